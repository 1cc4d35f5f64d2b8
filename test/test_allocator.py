"""Frame-sized buffers come from the heap once the node has tuned malloc (no page faults)."""

import subprocess
import sys

PROBE = '''
import ctypes, sys
import numpy as np
from jetson_seg.allocator import keep_large_allocations

class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        'arena', 'ordblks', 'smblks', 'hblks', 'hblkhd', 'usmblks', 'fsmblks', 'uordblks',
        'fordblks', 'keepcost')]

libc = ctypes.CDLL('libc.so.6')
libc.mallinfo2.restype = MallInfo2
if sys.argv[1] == 'tuned':
    assert keep_large_allocations()
before = libc.mallinfo2().hblkhd
frame = np.ones((480, 640, 3), np.uint8)  # one rgb8 frame, 921,600 bytes
print(libc.mallinfo2().hblkhd - before)
'''


def _mmapped_bytes_for_one_frame(mode: str) -> int:
    out = subprocess.run([sys.executable, '-c', PROBE, mode], capture_output=True, text=True,
                         check=True)
    return int(out.stdout.split()[-1])


def test_a_frame_is_mmapped_by_default_and_comes_from_the_heap_once_tuned():
    assert _mmapped_bytes_for_one_frame('default') >= 480 * 640 * 3
    assert _mmapped_bytes_for_one_frame('tuned') == 0
