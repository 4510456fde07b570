// Results: statistics and figures over finished runs (see Report.swift, Figures.swift).
