// Results: statistics and figures over finished runs. RunResult.swift (a run and its §6.3
// metrics, the iterative pruning rate), Configurations.swift (grouping and labels),
// Statistics.swift (bootstrap CIs, Pearson, Kendall tau-b), Report.swift (table/CSV/JSON),
// Figures.swift and SVG.swift (the paper's figures as SVG).
