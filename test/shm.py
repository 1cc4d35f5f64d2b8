"""Fast DDS shared-memory segments of a process, and those left behind with no user."""

from __future__ import annotations

from pathlib import Path

SHM = Path('/dev/shm')
#: Segment names: Fast DDS 3 (Kilted) writes fastdds_*, Fast DDS 2 (Humble, Jazzy) fastrtps_*.
PREFIXES = ('fastdds_', 'fastrtps_')


def fastdds_files() -> set[str]:
    return {p.name for prefix in PREFIXES for p in SHM.glob(f'{prefix}*')}


def segments_of(pid: int) -> set[str]:
    """Fast DDS segment files a process has mapped or open (its own and its peers')."""
    try:
        names = {line.rsplit('/', 1)[-1] for line in Path(f'/proc/{pid}/maps').read_text()
                 .splitlines() if any(f'/dev/shm/{prefix}' in line for prefix in PREFIXES)}
        fds = list(Path(f'/proc/{pid}/fd').iterdir())
    except OSError:  # gone, or not ours to read
        return set()
    for fd in fds:
        try:
            target = str(fd.readlink())
        except OSError:  # closed meanwhile
            continue
        if target.startswith(tuple(f'/dev/shm/{prefix}' for prefix in PREFIXES)):
            names.add(target.rsplit('/', 1)[-1])
    return names


def in_use() -> set[str]:
    """Segment files some living process still uses (peers such as this test's own)."""
    used: set[str] = set()
    for proc in Path('/proc').iterdir():
        if proc.name.isdigit():
            used |= segments_of(int(proc.name))
    return used


def leaked(own: set[str]) -> set[str]:
    """Of a stopped process's segments `own`, those still on disk that no living process uses."""
    return own & fastdds_files() - in_use()
