"""The optimizer deletes only the run folders it made, and refuses a folder of someone else's.

Issue 21, item 6: an output_dir holding a user's own run-* folders lost them silently. Real runs
(in this process and as the optimizer node) on real folders; a refused folder is compared byte
for byte, times included, before and after.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from jetson_seg.errors import ArtefactError
from jetson_seg.optimize import artefacts
from jetson_seg.optimize.optimizer import Optimizer, OptimizerConfig


def _snapshot(root: Path) -> dict[str, tuple]:
    """Every entry under `root` (itself included): kind, bytes, mode and modification time."""
    entries = {}
    for path in [root, *sorted(root.rglob('*'))]:
        st = path.lstat()
        data = path.read_bytes() if path.is_file() else None
        entries[str(path.relative_to(root))] = (path.is_dir(), data, st.st_mode, st.st_mtime_ns)
    return entries


def _users_folder(root: Path) -> Path:
    """A folder a user keeps their own runs in: run-foo/ with results, notes.txt."""
    (root / 'run-foo' / 'results').mkdir(parents=True)
    (root / 'run-foo' / 'results' / 'loss.csv').write_text('epoch,loss\n1,0.5\n')
    (root / 'run-foo' / 'model.keras').write_bytes(os.urandom(256))
    (root / 'notes.txt').write_text('my notes\n')
    return root


def _config(out: Path, **changes) -> OptimizerConfig:
    return OptimizerConfig(output_dir=str(out), targets=('tf',), check_frames=2, **changes)


def test_a_users_folder_is_refused_by_the_node_and_left_byte_for_byte(ros_env, tmp_path):
    out = _users_folder(tmp_path / 'mine')
    before = _snapshot(out)
    result = subprocess.run([sys.executable, '-m', 'jetson_seg.ros.optimizer_node',
                             '--ros-args', '-p', f'output_dir:={out}', '-p', 'targets:=[tf]'],
                            env=ros_env, capture_output=True, text=True, timeout=300)
    text = result.stdout + result.stderr
    assert result.returncode == 1, text
    assert 'notes.txt, run-foo/, which the optimizer did not make' in text, text
    assert 'choose another output_dir' in text and 'Traceback' not in text, text
    assert _snapshot(out) == before  # not even a lock file


@pytest.mark.parametrize('make, shown', [
    (lambda d: (d / 'run-20240101-120000-42').mkdir() or
     (d / 'run-20240101-120000-42' / 'x.bin').write_bytes(b'1'), 'run-20240101-120000-42/'),
    (lambda d: (d / 'manifest.json').write_text('{"name": "my dataset"}'), 'manifest.json'),
    (lambda d: (d / '.lock').write_text('my lock'), '.lock'),
    (lambda d: (d / 'run-x').symlink_to(d.parent), 'run-x'),
])
def test_anything_the_optimizer_did_not_make_is_refused(tmp_path, make, shown):
    out = tmp_path / 'out'
    out.mkdir()
    make(out)
    before = _snapshot(out)
    with pytest.raises(ArtefactError, match='which the optimizer did not make') as refused:
        Optimizer(_config(out), log=lambda _: None).run()
    assert f'holds {shown},' in str(refused.value)
    assert _snapshot(out) == before


def test_empty_and_new_folders_are_taken(tmp_path):
    (tmp_path / 'empty').mkdir()
    for out in (tmp_path / 'empty', tmp_path / 'new' / 'deeper'):
        artefacts.check_output_dir(out)
    (tmp_path / 'file').write_text('x')
    with pytest.raises(ArtefactError, match='is a file, not a folder'):
        artefacts.check_output_dir(tmp_path / 'file')


def test_a_real_second_run_removes_only_its_own_superseded_runs(tmp_path):
    out = tmp_path / 'out'
    first = Optimizer(_config(out), log=lambda _: None).run()['run']
    assert artefacts.is_marked_run(out / first)
    killed = artefacts.new_run_dir(out)  # what a killed run leaves: marked, half written
    (killed / 'tf').mkdir()
    mark_only = (out / first / artefacts.RUN_MARK).read_text()
    assert json.loads(mark_only) == {'made_by': artefacts.MADE_BY, 'run': first}
    second = Optimizer(_config(out, force_rebuild=True), log=lambda _: None).run()['run']
    assert second not in (first, killed.name)
    assert sorted(p.name for p in out.iterdir()) == ['.lock', 'manifest.json', second]
    assert artefacts.is_marked_run(out / second)


def test_an_output_made_before_run_marks_is_taken_and_its_run_replaced(tmp_path):
    """A run folder without a mark is ours only when our manifest names it (older outputs)."""
    out = tmp_path / 'out'
    old = Optimizer(_config(out), log=lambda _: None).run()['run']
    (out / old / artefacts.RUN_MARK).unlink()  # as every output before this change
    artefacts.check_output_dir(out)
    unnamed = out / 'run-20200101-000000-7'  # unmarked and not named: not recognised
    unnamed.mkdir()
    (unnamed / 'model.pb').write_bytes(b'not ours')
    with pytest.raises(ArtefactError, match='holds run-20200101-000000-7/'):
        artefacts.check_output_dir(out)
    (unnamed / 'model.pb').unlink()  # empty with the run-name pattern: a run killed at birth
    assert artefacts.unrecognised(out) == []
    new = Optimizer(_config(out, force_rebuild=True), log=lambda _: None).run()['run']
    assert sorted(p.name for p in out.glob('run-*')) == [new]
