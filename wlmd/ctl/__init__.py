"""``wlmctl``: the command line for writing and reading worklist storage areas.

A client of :mod:`wlmd.authoring` (the REST layer would be another); it
never talks DICOM over the network.
"""
