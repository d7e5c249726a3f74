"""Pure logic for the configuration repository: ref comparison and ConfigMap drift (drift.py). The
engine (datastores/config/) wires it to clients/git.py and the Kubernetes API."""
