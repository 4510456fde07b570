// Results: statistics and figures over finished runs. RunResult.swift (a run read from its
// directory), RunMetrics.swift (its docs/EXPERIMENTS.md §6.3 per-run statistics, also those of Training's
// summary.json), IterativeRate.swift (the iterative pruning rate), Configurations.swift
// (grouping and labels), Statistics.swift (bootstrap CIs, Pearson, Kendall tau-b), Report.swift
// (table/CSV/JSON), ReportOutput.swift (what both report commands print and write, and the
// reading of run directories), Figures.swift and SVG.swift (the paper's figures as SVG).
