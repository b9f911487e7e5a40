"""Telling people: the events a monitor run gives rise to (plain data, :mod:`.events`), the
server-less notifier with its incident state (:mod:`.notify`, :mod:`.incidents`). Prefect's
events and automations are sent from :mod:`driftwatch.orchestration.events` and
:mod:`driftwatch.orchestration.automations`, the only modules here that talk to Prefect."""
