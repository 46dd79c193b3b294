module headwater.local/benchmarks/peers/robfig

go 1.19

require github.com/robfig/cron/v3 v3.0.1

// No module proxy is reachable: build against Debian's
// golang-github-robfig-cron-dev (3.0.1) source.
replace github.com/robfig/cron/v3 => /usr/share/gocode/src/github.com/robfig/cron
