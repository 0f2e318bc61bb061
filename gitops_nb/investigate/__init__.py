"""Layer 2, investigation: the what-changed timeline (timeline), its cluster rows (evidence_rows), the
culprit score (scoring), drift and manual edits (drift), the rendered diff of a commit (render), and the plot
(plot)."""
