"""Pure logic for the S3 cross-region-replication checks: inventory diffs (diff.py) and canaries
(canary.py). The engine (datastores/objects/) wires them to clients/s3.py."""
