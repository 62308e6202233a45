# The two commands of the README: `make demo` and `make test`.
# Both create .venv when it is missing or older than pyproject.toml.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_DIR ?= runs/demo
DEMO_METHODS ?= simclr moco_v2 moco_v3 byol rotation jigsaw relative_position dim cpc amdim mae autoencoder

.PHONY: demo test venv clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	rm -rf $(DEMO_DIR)
	@for method in $(DEMO_METHODS); do \
		$(BIN)/selfsup fit --config configs/pretrain/$${method}_digits.yaml \
			--trainer.default_root_dir $(DEMO_DIR)/$$method || exit 1; \
	done
	$(BIN)/selfsup evaluate --config configs/downstream/digits_fewshot.yaml
	$(BIN)/selfsup evaluate --config configs/downstream/digits.yaml

test: $(STAMP)
	$(BIN)/ruff check selfsup downstream slurm tests benchmarks
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) runs .pytest_cache
