"""The REST API and the worklist web page (issue 14 items 3 and 4), a helper child of wlmd.

Off unless ``--api-port`` is given. The supervisor binds the port before
READY=1 (:mod:`wlmd.api.part`), then runs the HTTP server in a helper child
(:mod:`wlmd.process.helpers`): forked after the data is loaded, restarted
with backoff if it dies, stopped with SIGTERM at shutdown. Every read and
write of a worklist entry goes through :mod:`wlmd.authoring`, the one module
that writes ``.wl`` files by the lockfile protocol and judges them as the
server does (:mod:`wlmd.api.entries` is the thin layer between the two).
"""
