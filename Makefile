# Lifeboat developer entry points.  Add new targets below; keep them .PHONY.
#   make stack-up                      # bootstrap + start the local devstack
#   make stack-up VENV=/path/to/venv   # use another virtualenv
#   make stack-down [WIPE=1]           # stop (WIPE=1 also deletes .stack/)

SHELL := /bin/bash

VENV ?= .venv
PYTHON := $(VENV)/bin/python
# stack.py is stdlib-only: stop/status also work before the venv exists
STACK_PYTHON = $(if $(wildcard $(PYTHON)),$(PYTHON),python3)
STACK := devstack/stack.py

.PHONY: bootstrap stack-up stack-down stack-status

bootstrap:
	LIFEBOAT_VENV=$(VENV) bash scripts/bootstrap.sh

stack-up: bootstrap
	$(PYTHON) $(STACK) up

stack-down:
	$(STACK_PYTHON) $(STACK) down $(if $(WIPE),--wipe)

stack-status:
	$(STACK_PYTHON) $(STACK) status
