# The two commands of the README: `make demo` and `make test`.
# Both create .venv when it is missing or older than pyproject.toml.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_DIR ?= runs/demo
DEMO_METHODS ?= simclr moco_v2 moco_v3 byol rotation jigsaw relative_position dim cpc amdim mae autoencoder \
	simclr_student
# Students of the demo's AMDIM backbone, by feature regression and by SEED (configs/pretrain/distill*_digits.yaml).
DEMO_STUDENTS ?= distill distill_seed
DEMO_TEACHER ?= amdim

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
	@for student in $(DEMO_STUDENTS); do \
		$(BIN)/selfsup fit --config configs/pretrain/$${student}_digits.yaml \
			--trainer.default_root_dir $(DEMO_DIR)/$$student \
			--model.init_args.teacher $(DEMO_DIR)/$(DEMO_TEACHER)/backbone.pt || exit 1; \
	done
	$(BIN)/selfsup dictionary --config configs/classical/dictionary_digits.yaml --output_dir $(DEMO_DIR)/dictionary
	$(BIN)/selfsup sdl --config configs/classical/sdl_digits.yaml --output_dir $(DEMO_DIR)/sdl
	$(BIN)/selfsup evaluate --config configs/downstream/digits_fewshot.yaml
	$(BIN)/selfsup evaluate --config configs/downstream/digits.yaml

test: $(STAMP)
	$(BIN)/ruff check selfsup downstream slurm tests benchmarks
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) runs .pytest_cache
