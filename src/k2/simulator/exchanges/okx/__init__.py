"""OKX v5 in the simulator: ``trades-all`` on the business endpoint, ``trades`` on the public one,
the public REST endpoints, its spot instruments."""
