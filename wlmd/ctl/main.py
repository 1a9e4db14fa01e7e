"""``wlmctl``: create, check, list, show and remove worklist entries in a storage area.

Every change goes through :class:`wlmd.authoring.editor.AreaEditor` (lock
protocol, the server's own verdict before a file is renamed into place), so
what wlmctl accepts is exactly what wlmd and wlmscpfs serve.

Exit status: 0 done; 1 an entry was refused (the server would skip it),
is not there, or nothing matched; 2 usage (bad option or value); 3 the
storage area could not be used (missing, permissions, the write lock not
obtained within --lock-timeout). Errors are one line, ``wlmctl: ...``.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import sys
import time
from collections.abc import Sequence

from pydicom.dataset import Dataset

from wlmd.authoring import compose
from wlmd.authoring.editor import AreaEditor, Written
from wlmd.authoring.errors import AreaProblem, AuthoringError, BadInput, NotFound
from wlmd.authoring.locking import DEFAULT_LOCK_TIMEOUT
from wlmd.authoring.selection import Selection, date_range, parse_date
from wlmd.authoring.verdict import judge_bytes, judge_file
from wlmd.ctl import flags, inputs, output
from wlmd.ctl.parser import DEFAULT_AREA, DEFAULT_DATA_FILES_PATH, USAGE, build_parser

OK, FAILED, UNAVAILABLE = 0, 1, 3
#: Progress lines of a long import, at most one per this many seconds.
PROGRESS_EVERY = 2.0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except AreaProblem as exc:
        return _fail(exc.reason, UNAVAILABLE)
    except NotFound as exc:
        return _fail(exc.reason, FAILED)
    except BadInput as exc:
        return _fail(exc.reason, USAGE if isinstance(exc, UsageError) else FAILED)
    except AuthoringError as exc:
        return _fail(exc.reason, FAILED)
    except KeyboardInterrupt:
        return _fail("interrupted", 130)
    except BrokenPipeError:
        return OK  # `wlmctl list | head`


def _fail(reason: str, status: int) -> int:
    sys.stderr.write(f"wlmctl: {reason}\n")
    return status


def _editor(args: argparse.Namespace) -> AreaEditor:
    timeout = getattr(args, "lock_timeout", DEFAULT_LOCK_TIMEOUT)
    return AreaEditor(
        getattr(args, "data_files_path", DEFAULT_DATA_FILES_PATH),
        getattr(args, "area", DEFAULT_AREA),
        lock_timeout=None if timeout == 0 else timeout,
        generation=_generation(args) if hasattr(args, "no_generate") else None,
    )


def _generation(args: argparse.Namespace) -> compose.Generation:
    off = set(args.no_generate)
    return compose.Generation(
        study_instance_uid="StudyInstanceUID" not in off,
        requested_procedure_id="RequestedProcedureID" not in off,
        sps_id="ScheduledProcedureStepID" not in off,
        accession_number="AccessionNumber" not in off,
        uid_root=args.uid_root,
        id_prefix=args.id_prefix,
    )


def _selection(args: argparse.Namespace) -> Selection:
    low = high = None
    if args.date is not None:
        low, high = date_range(args.date)
    return Selection(args.patient_id, args.accession, args.modality, args.station, low, high)


# --- the commands ------------------------------------------------------------------------
def cmd_add(args: argparse.Namespace) -> int:
    editor = _editor(args)
    submitted: list[tuple[str, Dataset]] = []
    for path in args.files:
        try:
            found = inputs.datasets(path, args.format)
        except BadInput as exc:
            raise BadInput(f"{path}: {exc.reason}") from None
        submitted += [(path, flags.apply(args, ds)) for ds in found]
    if not args.files:
        submitted.append(("(flags)", flags.apply(args, Dataset())))
    outcomes: list[dict[str, object]] = []
    status = OK
    for label, ds in submitted:
        try:
            written = editor.put(ds)
        except (AreaProblem, NotFound):
            raise
        except AuthoringError as exc:
            sys.stderr.write(f"wlmctl: {label}: refused: {exc.reason}\n")
            outcomes.append({"input": label, "error": exc.reason})
            status = FAILED
            continue
        outcomes.append(_written(label, written))
        if not args.json:
            sys.stdout.write(_written_line(written))
    if args.json:
        output.print_json(outcomes, sys.stdout)
    return status


def _written(label: str, written: Written) -> dict[str, object]:
    return {
        "input": label,
        "file": written.name,
        "replaced": written.replaced,
        "generated": written.generated,
    }


def _written_line(written: Written) -> str:
    verb = "replaced" if written.replaced else "added"
    generated = "".join(f" {k}={v}" for k, v in written.generated.items())
    return f"{verb} {written.name}{' generated' + generated if generated else ''}\n"


def cmd_validate(args: argparse.Namespace) -> int:
    status = OK
    if args.files:
        verdicts = [(path, _verdict_of_input(path, args)) for path in args.files]
    else:
        editor = _editor(args)
        verdicts = [(item.name, item.problem) for item in editor.entries()]
    for label, problem in verdicts:
        if problem is not None:
            status = FAILED
            sys.stdout.write(f"{label}: skipped: {problem}\n")
        elif not args.quiet:
            sys.stdout.write(f"{label}: ok\n")
    return status


def _verdict_of_input(path: str, args: argparse.Namespace) -> str | None:
    """A DICOM file is judged as it is; JSON and dump text as ``add`` would write them."""
    try:
        data = inputs.read_bytes(path) if path == "-" else None
        fmt = args.format
        if fmt == "auto":
            fmt = inputs.guess_format(data if data is not None else inputs.read_bytes(path))
        if fmt == "dicom" and path != "-":
            return judge_file(path)[1]
        if fmt == "dicom":
            assert data is not None
            return judge_bytes(data)[1]
        found = inputs.datasets(path, fmt)
    except BadInput as exc:
        return exc.reason
    generation = _generation(args)
    for ds in found:
        entry = compose.prepared(ds)
        compose.fill_generated(entry, generation, compose.UsedValues())
        try:
            problem = judge_bytes(compose.encode(entry))[1]
        except BadInput as exc:
            problem = exc.reason
        if problem is not None:
            return problem
    return None


def cmd_list(args: argparse.Namespace) -> int:
    editor = _editor(args)
    selection = _selection(args)
    unfiltered = selection == Selection()
    listed = editor.entries(None if unfiltered else selection)
    rows = [output.row(item) for item in listed if item.entry is not None or args.all]
    if args.json:
        output.print_json(rows, sys.stdout)
    else:
        output.print_table(rows, sys.stdout)
    return OK


def cmd_show(args: argparse.Namespace) -> int:
    ds = _editor(args).get(args.name)
    if args.json:
        body = Dataset()
        body.update(ds)
        output.print_json(body.to_json_dict(), sys.stdout)
    else:
        output.print_dataset(ds, sys.stdout)
    return OK


def cmd_rm(args: argparse.Namespace) -> int:
    editor = _editor(args)
    selection = _selection(args)
    if args.names and selection != Selection():
        raise _usage("rm: give names or a selection, not both")
    if args.names:
        removed = editor.remove(args.names)
    elif selection != Selection():
        removed = editor.remove_where(selection)
        if not removed:
            raise NotFound("no entry matches")
    else:
        raise _usage("rm: which entries? give FILE.wl names or --patient-id/--accession/...")
    for name in removed:
        sys.stdout.write(f"removed {name}\n")
    return OK


def cmd_purge(args: argparse.Namespace) -> int:
    if args.housekeeping:
        from wlmd.ctl import housekeeping

        try:
            return housekeeping.run(args.config)
        except housekeeping.HousekeepingSettingsError as exc:
            raise _usage(f"purge --housekeeping: {exc}") from None
    if args.before is not None:
        before = parse_date(args.before)
    else:
        if args.older_than < 0:
            raise _usage("purge: --older-than must not be negative")
        before = _dt.date.today() - _dt.timedelta(days=args.older_than)
    removed = _editor(args).purge(before)
    for name in removed:
        sys.stdout.write(f"removed {name}\n")
    sys.stderr.write(f"wlmctl: purge: {len(removed)} entries scheduled before {before} removed\n")
    return OK


def cmd_import(args: argparse.Namespace) -> int:
    editor = _editor(args)
    paths = inputs.directory_files(args.directory)
    labels: list[str] = []
    started = last = time.monotonic()
    counts = {"added": 0, "replaced": 0, "refused": 0}

    def done(count: int, result: Written | AuthoringError) -> None:
        nonlocal last
        if isinstance(result, AuthoringError):
            counts["refused"] += 1
            sys.stderr.write(f"wlmctl: {labels[count - 1]}: refused: {result.reason}\n")
        else:
            counts["replaced" if result.replaced else "added"] += 1
        now = time.monotonic()
        if not args.quiet and now - last >= PROGRESS_EVERY:
            last = now
            sys.stderr.write(
                f"wlmctl: import: {count} entries ({_counts(counts)}), {now - started:.0f} s\n"
            )

    results = editor.put_many(inputs.labelled(paths, args.format, labels), done)
    elapsed = time.monotonic() - started
    sys.stderr.write(
        f"wlmctl: import: {len(results)} entries from {len(paths)} files in {elapsed:.1f} s: "
        f"{_counts(counts)}\n"
    )
    return FAILED if counts["refused"] else OK


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{v} {k}" for k, v in counts.items())


class UsageError(BadInput):
    """A command used wrongly (exit status 2), found after argparse."""


def _usage(reason: str) -> UsageError:
    return UsageError(reason)


COMMANDS = {
    "add": cmd_add,
    "validate": cmd_validate,
    "list": cmd_list,
    "show": cmd_show,
    "rm": cmd_rm,
    "purge": cmd_purge,
    "import": cmd_import,
}

if __name__ == "__main__":
    sys.exit(main())
