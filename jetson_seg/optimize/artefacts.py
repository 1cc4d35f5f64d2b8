"""Optimizer output on disk: versioned run folders and one atomically replaced manifest.

Layout of an output directory:

    manifest.json        which run is current, its files with SHA-256, and the model facts
    run-<time>-<pid>/    the files of one run (tf/model.pb, litert/*.tflite, tftrt/...), and
                         .jetson_seg_run, the mark that says this package made the folder
    .lock                held (flock) by the run writing the folder
    trt_cache/           engines ONNX Runtime's TensorRT provider builds when a node serves it

A run writes its own folder, checks every artefact, and only then replaces manifest.json with
os.replace (atomic on POSIX). A run that fails or is killed leaves the old manifest, which still
names the old, complete folder, so a node never sees a half-written model.

The optimizer deletes only what it made: run folders with its mark. An output_dir holding
anything else is refused before anything is written (check_output_dir), so pointing output_dir
at a folder of one's own loses nothing.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import time
from pathlib import Path

from jetson_seg.engines.onnxruntime import TRT_CACHE
from jetson_seg.errors import ArtefactError
from jetson_seg.model_info import locate_model, source_files

#: Mean class IoU against FP32 (on the check frames) at which an INT8 file keeps the objects:
#: `precision:=auto` serves INT8 from this on, and the optimizer keeps the fewest float
#: operations that reach it. Measured on two default models, INT8 files against 200 held-out
#: scenes: class IoU 0.89-0.95 lost 0.03 mIoU, 0.970-0.9715 lost 0.004-0.011, 0.979 lost
#: 0.0045: from 0.975 on, a file stays inside the 0.01 mIoU a served precision may cost.
INT8_CLASS_IOU = 0.975

MANIFEST = 'manifest.json'
LOCK_FILE = '.lock'
MANIFEST_VERSION = 1
#: File inside each run folder the optimizer creates: what made it and the folder's name.
RUN_MARK = '.jetson_seg_run'
MADE_BY = 'jetson_seg optimizer'
RUN_NAME = re.compile(r'run-\d{8}-\d{6}-\d+')
TMP_MANIFEST = re.compile(r'\.manifest\.json\.\d+\.tmp')


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, 'rb') as handle:
        for block in iter(lambda: handle.read(1 << 20), b''):
            digest.update(block)
    return digest.hexdigest()


def source_digest(model_path: Path) -> str:
    """SHA-256 over a model's defining files (model_info.source_files), names included."""
    root = locate_model(model_path)[0]
    digest = hashlib.sha256()
    for item in source_files(model_path):
        digest.update(item.relative_to(root).as_posix().encode())
        digest.update(sha256_of(item).encode())
    return digest.hexdigest()


def new_run_dir(output_dir: Path) -> Path:
    """Create the folder for a new run inside `output_dir`, marked as this package's."""
    output_dir.mkdir(parents=True, exist_ok=True)
    run = output_dir / f'run-{time.strftime("%Y%m%d-%H%M%S")}-{os.getpid()}'
    run.mkdir()
    (run / RUN_MARK).write_text(json.dumps({'made_by': MADE_BY, 'run': run.name}) + '\n')
    return run


def is_marked_run(path: Path) -> bool:
    """True when `path` is a real folder whose mark says this package made it, under this name."""
    mark = path / RUN_MARK
    if path.is_symlink() or not path.is_dir() or mark.is_symlink() or not mark.is_file():
        return False
    try:
        data = json.loads(mark.read_text())
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and data.get('made_by') == MADE_BY and \
        data.get('run') == path.name


def own_manifest(output_dir: Path) -> dict | None:
    """`output_dir`/manifest.json if this package wrote it (keys it always writes), else None."""
    path = output_dir / MANIFEST
    if path.is_symlink() or not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    keys = ('manifest_version', 'run', 'targets', 'model')
    if not isinstance(data, dict) or not all(key in data for key in keys) or \
            not isinstance(data['run'], str):
        return None
    return data


def is_own_run(path: Path, named: str | None) -> bool:
    """True for a run folder this package made.

    That is a folder with the run mark; or `named`, the run a manifest of this package names,
    which may predate the mark (outputs made before it: the manifest that lists the folder's
    files with their checksums vouches for it); or an empty folder with exactly the run-name
    pattern, which a run killed between creating its folder and writing the mark leaves (an
    empty folder holds nothing to lose). Any other unmarked `run-*` folder is not ours.
    """
    if path.is_symlink() or not path.is_dir():
        return False
    if is_marked_run(path) or path.name == named:
        return True
    return RUN_NAME.fullmatch(path.name) is not None and not any(path.iterdir())


def unrecognised(output_dir: Path) -> list[str]:
    """Names of the entries in `output_dir` this package did not make (folders end with /)."""
    if not output_dir.is_dir():
        return []
    manifest = own_manifest(output_dir)
    named = manifest['run'] if manifest else None
    foreign = []
    for child in output_dir.iterdir():
        plain_file = child.is_file() and not child.is_symlink()
        if (child.name == MANIFEST and manifest is not None) or \
                (child.name == LOCK_FILE and plain_file and child.stat().st_size == 0) or \
                (TMP_MANIFEST.fullmatch(child.name) and plain_file) or \
                (child.name == TRT_CACHE and child.is_dir() and not child.is_symlink()) or \
                is_own_run(child, named):
            continue
        foreign.append(child.name + ('/' if child.is_dir() and not child.is_symlink() else ''))
    return sorted(foreign)


def check_output_dir(output_dir: Path) -> None:
    """Refuse an `output_dir` that holds anything this package did not make.

    The optimizer deletes superseded run folders there; taking only an empty or new folder, or
    one of its own outputs, means it never deletes (or overwrites) a user's files.
    """
    if output_dir.exists() and not output_dir.is_dir():
        raise ArtefactError(f'output_dir {output_dir} is a file, not a folder; give a new or '
                            f'empty folder')
    foreign = unrecognised(output_dir)
    if foreign:
        shown = ', '.join(foreign[:5]) + (f' and {len(foreign) - 5} more'
                                          if len(foreign) > 5 else '')
        raise ArtefactError(
            f'output_dir {output_dir} holds {shown}, which the optimizer did not make; it '
            f'replaces and deletes run folders there, so it takes only a new or empty folder or '
            f'one of its own outputs: choose another output_dir (e.g. {output_dir / "optimized"}'
            f') or move those away')


def publish(output_dir: Path, run_dir: Path, manifest: dict) -> Path:
    """Record checksums, atomically make `run_dir` current, then remove superseded runs."""
    for target in manifest['targets'].values():
        for entry in target.get('files', []):
            entry['sha256'] = sha256_of(run_dir / entry['path'])
    manifest = {**manifest, 'manifest_version': MANIFEST_VERSION, 'run': run_dir.name}
    previous = own_manifest(output_dir)
    tmp = output_dir / f'.{MANIFEST}.{os.getpid()}.tmp'
    tmp.write_text(json.dumps(manifest, indent=2) + '\n')
    with open(tmp, 'rb') as handle:
        os.fsync(handle.fileno())
    os.replace(tmp, output_dir / MANIFEST)
    remove_stale_runs(output_dir, keep=run_dir.name,
                      superseded=previous['run'] if previous else None)
    return output_dir / MANIFEST


@contextlib.contextmanager
def exclusive(output_dir: Path):
    """Hold `output_dir` for one optimizer run; a second run is refused, not interleaved.

    Two runs would delete each other's run folders as stale. The kernel drops the lock when
    its holder dies, so a killed run never blocks the next one.
    """
    output_dir.mkdir(parents=True, exist_ok=True)
    with open(output_dir / LOCK_FILE, 'w') as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ArtefactError(f'another optimizer run is writing {output_dir}; wait for it '
                                f'or choose another output_dir') from None
        yield


def remove_stale_runs(output_dir: Path, keep: str | None,
                      superseded: str | None = None) -> list[str]:
    """Delete this package's run folders other than `keep` (failed, killed or superseded runs).

    Only folders is_own_run recognises go; `superseded` is the run the manifest named until
    now (it may predate the run mark). Anything else is left as it is.
    """
    removed = []
    for child in sorted(output_dir.glob('run-*')):
        if child.name != keep and is_own_run(child, superseded):
            shutil.rmtree(child, ignore_errors=True)
            removed.append(child.name)
    for tmp in output_dir.glob(f'.{MANIFEST}.*.tmp'):
        tmp.unlink(missing_ok=True)
    return removed


def current_run(output_dir: Path) -> str | None:
    manifest = output_dir / MANIFEST
    if not manifest.is_file():
        return None
    try:
        return json.loads(manifest.read_text()).get('run')
    except ValueError:
        return None


def read_manifest(output_dir: Path) -> dict:
    """Load and sanity-check a manifest; the error names the file and the problem."""
    path = output_dir / MANIFEST
    try:
        manifest = json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise ArtefactError(f'no {MANIFEST} in {output_dir}') from exc
    except ValueError as exc:
        raise ArtefactError(f'{path} is not valid JSON: {exc}') from exc
    for key in ('run', 'targets', 'model'):
        if key not in manifest:
            raise ArtefactError(f'{path} lacks "{key}"')
    return manifest


def verified_file(output_dir: Path, manifest: dict, target: str, role: str) -> Path:
    """Path of a target's file after checking it exists and matches its recorded checksum.

    The file must lie inside the manifest's run folder (links resolved): a manifest naming
    '../elsewhere/model.tflite' would serve a model the description was never made for.
    """
    entry = next((f for f in manifest['targets'][target].get('files', [])
                  if f['role'] == role), None)
    if entry is None:
        raise ArtefactError(f'manifest target {target!r} has no {role!r} file')
    run = (output_dir / str(manifest['run'])).resolve()
    path = (run / str(entry['path'])).resolve()
    if run.parent != output_dir.resolve() or not path.is_relative_to(run):
        raise ArtefactError(f'{output_dir / MANIFEST} names {path}, outside its run folder '
                            f'{run}; an optimizer output only serves files inside it')
    if not path.is_file():
        raise ArtefactError(f'{path} is missing (named by {output_dir / MANIFEST})')
    actual = sha256_of(path)
    if actual != entry.get('sha256'):
        raise ArtefactError(f'{path} does not match its manifest checksum '
                            f'(sha256 {actual[:12]}... != {str(entry.get("sha256"))[:12]}...)')
    return path
