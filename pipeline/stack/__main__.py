"""``python -m pipeline.stack up|down|env|status --dir STATE_DIR`` (see ``pipeline.stack``)."""

from pipeline.stack.servers import main

main()
