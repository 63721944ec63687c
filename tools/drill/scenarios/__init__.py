"""The drill's scenarios, one module each (a `run(drill)` and its Yardstick, together its SCENARIO).

They run in one world in this order, each leaving a working world for the next: the PITR variant of the corruption
re-clones the EU replica the regional outage then promotes, and failback, which needs a promoted EU, gives the US
back last. A new scenario is a module here and its place in ORDER.
"""

from __future__ import annotations

from collections.abc import Iterable

from tools.drill.harness import Scenario
from tools.drill.scenarios import (
    data_deletion,
    database_corruption,
    database_corruption_pitr,
    dns_loss,
    failback,
    regional_outage,
    security_breach,
    table_drop,
)

ORDER: tuple[Scenario, ...] = (dns_loss.SCENARIO, data_deletion.SCENARIO, table_drop.SCENARIO,
                               database_corruption.SCENARIO, database_corruption_pitr.SCENARIO,
                               security_breach.SCENARIO, regional_outage.SCENARIO, failback.SCENARIO)
SCENARIOS: tuple[str, ...] = tuple(scenario.name for scenario in ORDER)
"""Every scenario's name, in the order they run."""


def chosen(names: Iterable[str]) -> tuple[Scenario, ...]:
    """The named scenarios, in the order they run (whatever order they were named in)."""
    wanted = set(names)
    return tuple(scenario for scenario in ORDER if scenario.name in wanted)
