"""Pure logic for container-image replication: which images are in use (refs.py). The engine
(datastores/images/) wires it to clients/registry.py."""
