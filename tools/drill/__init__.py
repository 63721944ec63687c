"""Recovery drills on one machine (`python -m tools.drill`): see docs/drill.md.

world.py      namespaces, links, processes, clean-up      postgres.py   the US primary and the EU replica
storage.py    a GCS emulator per site                      dns.py        Knot DNS and the resolver client
cloudflare.py STAND-IN: the Cloudflare DNS API             transfer.py   STAND-IN: Storage Transfer Service
app.py        STAND-IN: the Vercel deployment of a site    workload.py   the write workload and its ledger
plans.py      the stacks' plans and the model's estimates  build.py      the world's parts, stood up from the plans
jobs.py       the project's backup job, run in a site      harness.py    the Drill: setup, steps, measuring, teardown
scenarios/    one module per scenario, and their order     deletion.py   the data-deletion scenario's accounting
report.py     results, terms and the model comparison      render.py     the text and Markdown reports
records.py    drill records as a hash chain, and verify    __main__.py   the command line
monitor.py    STAND-IN: Cloud Monitoring (pages)           uptime.py     the plan's uptime checks and alerts
checker.py    one uptime probe, and a check's target
vercel.py     STAND-IN: the Vercel project's API           certs.py      the drill's CA and the apps' certificate
pulumi_cli.py STAND-IN: the Pulumi CLI of the failover     pulumi_apply.py  its `up`: the promotion diff applied
promotion.py  `tools.failover promote`, run as operators do
"""
