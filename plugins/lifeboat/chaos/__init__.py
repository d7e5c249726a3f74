"""Failure simulations: faults injected on purpose into the drill environment (by default), with
steady-state probes, measured time to detect and to recover, data lost (heartbeats) and a resilience score.

    settings.py     the inventory's `chaos:` section (validated; cheap, parse-time safe)
    records.py      the experiment record, the injected marker, the LitmusChaos-style score
    store.py        records in both regions' catalogs (chaos/experiments/, chaos/injected/)
    probes.py       steady-state probes: HTTP /health and /ready, a write/read per datastore, Ready replicas
    experiment.py   the Experiment base class: the flow every fault kind shares
    faults/         one module per fault kind (base.py: the interface; kubernetes, process, network)
    jobs.py         what the DAGs and the CLI call: guard, run one experiment, clean up leftovers
"""
