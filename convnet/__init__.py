"""convnet: a from-scratch NumPy deep-learning framework."""

from convnet._memory import tune_malloc as _tune_malloc
from convnet._threads import set_num_threads as set_num_threads  # explicit re-export

# Every training step frees and re-allocates the same large arrays: keep the freed memory in
# the process instead of paying page faults for it each step (glibc only; opt out with
# CONVNET_MALLOC_TUNING=0; see convnet/_memory.py).
_tune_malloc()
