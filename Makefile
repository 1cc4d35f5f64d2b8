# The two commands of the README. Each sets up .venv first (seconds when it is ready).
VENV := .venv
PY := $(VENV)/bin/python
export TF_CPP_MIN_LOG_LEVEL := 2

.PHONY: setup demo test lint clean

setup:
	bash scripts/setup_env.sh

demo: setup
	$(PY) -m jetson_seg.tools.demo --rate 120 --duration 20 --output output/demo

test: setup
	bash scripts/run_tests.sh
	bash scripts/test_jazzy.sh

clean:
	rm -rf $(VENV) .venv-jazzy build install log output
