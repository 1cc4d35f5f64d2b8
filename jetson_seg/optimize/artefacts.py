"""Optimizer output on disk: versioned run folders and one atomically replaced manifest.

Layout of an output directory:

    manifest.json        which run is current, its files with SHA-256, and the model facts
    run-<time>-<pid>/    the files of one run (tf/model.pb, litert/*.tflite, tftrt/...)

A run writes its own folder, checks every artefact, and only then replaces manifest.json with
os.replace (atomic on POSIX). A run that fails or is killed leaves the old manifest, which still
names the old, complete folder, so a node never sees a half-written model.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import time
from pathlib import Path

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
    """Create the folder for a new run inside `output_dir`."""
    output_dir.mkdir(parents=True, exist_ok=True)
    run = output_dir / f'run-{time.strftime("%Y%m%d-%H%M%S")}-{os.getpid()}'
    run.mkdir()
    return run


def publish(output_dir: Path, run_dir: Path, manifest: dict) -> Path:
    """Record checksums, atomically make `run_dir` current, then remove superseded runs."""
    for target in manifest['targets'].values():
        for entry in target.get('files', []):
            entry['sha256'] = sha256_of(run_dir / entry['path'])
    manifest = {**manifest, 'manifest_version': MANIFEST_VERSION, 'run': run_dir.name}
    tmp = output_dir / f'.{MANIFEST}.{os.getpid()}.tmp'
    tmp.write_text(json.dumps(manifest, indent=2) + '\n')
    with open(tmp, 'rb') as handle:
        os.fsync(handle.fileno())
    os.replace(tmp, output_dir / MANIFEST)
    remove_stale_runs(output_dir, keep=run_dir.name)
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


def remove_stale_runs(output_dir: Path, keep: str | None) -> list[str]:
    """Delete run folders the manifest does not name (left by failed or killed runs)."""
    removed = []
    for child in output_dir.glob('run-*'):
        if child.is_dir() and child.name != keep:
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
    """Path of a target's file after checking it exists and matches its recorded checksum."""
    entry = next((f for f in manifest['targets'][target].get('files', [])
                  if f['role'] == role), None)
    if entry is None:
        raise ArtefactError(f'manifest target {target!r} has no {role!r} file')
    path = output_dir / manifest['run'] / entry['path']
    if not path.is_file():
        raise ArtefactError(f'{path} is missing (named by {output_dir / MANIFEST})')
    actual = sha256_of(path)
    if actual != entry.get('sha256'):
        raise ArtefactError(f'{path} does not match its manifest checksum '
                            f'(sha256 {actual[:12]}... != {str(entry.get("sha256"))[:12]}...)')
    return path
