from tests.integrations.sims import sim_servers, sims  # noqa: F401 (fixtures)
