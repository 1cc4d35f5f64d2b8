"""Clean ends of the optimizer node (issue 21, item 8): signals and failures, as real processes.

SIGINT/SIGTERM mid-run end it between steps with 130/143 and one line, the previous output
served as it was and the unfinished run folder gone; a failure is one line naming the step and
the cause, with the traceback only under debug:=true.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from jetson_seg.optimize.artefacts import read_manifest

PARAMS = ('targets:=[tf,litert]', 'check_frames:=2')


class OptimizerProcess:
    """The optimizer node in its own process, its output (stdout and stderr) in a file."""

    def __init__(self, env: dict[str, str], log_dir: Path, *params: str) -> None:
        cmd = [sys.executable, '-m', 'jetson_seg.ros.optimizer_node', '--ros-args']
        for item in params:
            cmd += ['-p', item]
        self.log_path = log_dir / 'optimizer.log'
        with open(self.log_path, 'w') as log:
            self.proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)

    @property
    def text(self) -> str:
        return self.log_path.read_text()

    def wait_for_output(self, needle: str, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while needle not in self.text:
            assert self.proc.poll() is None, f'exited ({self.proc.returncode}):\n{self.text}'
            assert time.monotonic() < deadline, f'{needle!r} not seen in {timeout} s:\n' \
                                                f'{self.text}'
            time.sleep(0.05)

    def finish(self, timeout: float = 120.0) -> int:
        try:
            return self.proc.wait(timeout=timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture(scope='module')
def previous_output(ros_env, tmp_path_factory) -> Path:
    """A complete optimizer output: what a stopped run must leave served."""
    out = tmp_path_factory.mktemp('previous') / 'out'
    run = OptimizerProcess(ros_env, out.parent, f'output_dir:={out}', *PARAMS)
    assert run.finish(timeout=300) == 0, run.text
    return out


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes()
            for p in sorted(folder.rglob('*')) if p.is_file() and p.name != '.lock'}


@pytest.mark.parametrize('signum,code', [(signal.SIGTERM, 143), (signal.SIGINT, 130)],
                         ids=['SIGTERM', 'SIGINT'])
def test_a_signal_mid_run_stops_it_and_keeps_the_previous_output(ros_env, tmp_path,
                                                                 previous_output, signum, code):
    out = tmp_path / 'out'
    shutil.copytree(previous_output, out)
    before, served = _files(out), read_manifest(out)['run']
    run = OptimizerProcess(ros_env, tmp_path, f'output_dir:={out}', 'force_rebuild:=true',
                           *PARAMS)
    run.wait_for_output('freeze report')  # inside step 'target tf': a run folder exists
    assert len(list(out.glob('run-*'))) == 2
    run.proc.send_signal(signum)
    assert run.finish() == code, run.text
    name = signal.Signals(signum).name
    stopped = [line for line in run.text.splitlines() if 'stopped by' in line]
    assert len(stopped) == 1, run.text
    assert f"stopped by {name} before step 'target litert': nothing published, {out} still " \
           f"serves {served}" in stopped[0], run.text
    assert 'Traceback' not in run.text and 'KeyboardInterrupt' not in run.text, run.text
    assert 'published' not in run.text.replace('nothing published', ''), run.text
    assert _files(out) == before  # the manifest and its run as they were, the new run gone


def _corrupt_bag(folder: Path) -> Path:
    """A rosbag2 folder whose metadata lacks keys: the bag reader fails with its own error."""
    folder.mkdir()
    (folder / 'metadata.yaml').write_text(
        'rosbag2_bagfile_information:\n  version: 5\n  storage_identifier: sqlite3\n'
        '  relative_file_paths: [bag_0.db3]\n')
    (folder / 'bag_0.db3').write_bytes(bytes(range(256)) * 8)
    return folder


@pytest.mark.parametrize('debug', [False, True], ids=['one_line', 'debug'])
def test_an_unexpected_error_is_one_line_naming_the_step(ros_env, tmp_path, debug):
    bag = _corrupt_bag(tmp_path / 'bag')
    run = OptimizerProcess(ros_env, tmp_path, f'output_dir:={tmp_path / "out"}',
                           'targets:=[tf]', f'check_bag:={bag}', 'check_topic:=/image',
                           f'debug:={str(debug).lower()}')
    assert run.finish() == 1, run.text
    failed = [line for line in run.text.splitlines() if 'optimization failed' in line]
    assert len(failed) == 1, run.text
    assert "optimization failed at step 'check frames': unexpected AnyReaderError: " \
        in failed[0], run.text
    assert ('Traceback' in run.text) == debug, run.text
    assert not (tmp_path / 'out' / 'manifest.json').exists()
    assert not list((tmp_path / 'out').glob('run-*'))  # the unfinished run folder removed


def test_a_package_error_names_the_step_without_a_traceback(ros_env, tmp_path):
    mine = tmp_path / 'mine'
    mine.mkdir()
    (mine / 'notes.txt').write_text('mine\n')
    run = OptimizerProcess(ros_env, tmp_path, f'output_dir:={mine}')
    assert run.finish() == 1, run.text
    assert "optimization failed at step 'output_dir': output_dir " in run.text, run.text
    assert 'Traceback' not in run.text, run.text
