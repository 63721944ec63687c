"""raptorflow-dr: the disaster-recovery plan as infrastructure.

One program, two stacks; the stack config's `site` says which one this is.

- prod (site `primary`, US): the database-dump bucket (30-day retention, CMEK, access logs), the scheduled
  backups into it, the application's settings in Secret Manager, and the outputs the standby site reads.
- dr (site `standby`, EU): copies of prod's dump and user-files buckets kept by Storage Transfer Service,
  the standby backups (paused until promoted), the daily zone export - and the traffic switch: Cloudflare
  records (or load balancers) and Vercel env vars pointing at the primary until `promoted` is true.

Resource names never depend on `promoted`, so a flip only updates in place. Every site is watched by its
own monitoring (dr watches both sites, so alerting survives the loss of the primary region), and the
recovery objectives are recorded for the readiness report and the policy pack.
"""

import pulumi

from components.config import load_stack_config
from components.project_apis import ProjectApis, ProjectApisArgs
from components.recovery_objectives import RecoveryObjectives
from components.site_monitoring import SiteMonitoring
from components.sites import PrimarySite, SiteArgs, SitePart, StandbySite, TrafficSwitch, monitoring_args

config = load_stack_config()

# Every API the program uses, on before anything that needs it (a fresh project has them off).
apis = ProjectApis("apis", ProjectApisArgs(project=config.gcp.project))
apis.after_apis()
site_args = SiteArgs(config, apis.invoke_options())

parts: list[SitePart]
if config.site == "primary":
    parts = [PrimarySite("primary-site", site_args)]
else:
    parts = [StandbySite("standby-site", site_args), TrafficSwitch("traffic-switch", site_args)]

SiteMonitoring("monitoring", monitoring_args(config, parts))
RecoveryObjectives("recovery", config.site, config.recovery)
for part in parts:
    for key, value in part.exports.items():
        pulumi.export(key, value)
