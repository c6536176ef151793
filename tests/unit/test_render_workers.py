"""The render stage's worker supervision: output that is not UTF-8 cannot stall the pipe, and a worker that
stops printing is killed and named. The workers here are stand-in scripts (a fault to inject); the real
Blender worker's path is covered by the smoke tests, including an asset with a Latin-1 name."""

import sys
import time

import pytest

from pipeline.detection.render.dataset import render_specs
from pipeline.errors import PipelineError

# a worker that echoes far more than a pipe holds (64 KiB), in Latin-1 as Blender echoes an asset name
NOISY = ("import sys; out = sys.stdout.buffer\n"
         "for i in range(4000): out.write(b'Read asset caf\\xe9 \\xff\\xfe line %d of padding padding\\n' % i)\n"
         "[out.write(b'done %d\\n' % i) for i in range(2)]; out.flush()")
STALLS = "import sys, time; print('done 7', flush=True); time.sleep(120)"


@pytest.mark.timeout(60)
def test_non_utf8_output_beyond_the_pipe_buffer_does_not_hang(tmp_path):
    render_specs([{"index": 0}, {"index": 1}], tmp_path, shards=1, worker=[sys.executable, "-c", NOISY])


@pytest.mark.timeout(60)
def test_a_stalled_worker_is_killed_and_named(tmp_path):
    start = time.monotonic()
    with pytest.raises(PipelineError, match=r"shard [01] printed nothing for 1.5 s \(last image done: 7;") as err:
        render_specs([{"index": i} for i in range(4)], tmp_path, shards=2, stall_timeout_s=1.5,
                     worker=[sys.executable, "-c", STALLS])
    assert time.monotonic() - start < 20 and "\n" not in str(err.value)
