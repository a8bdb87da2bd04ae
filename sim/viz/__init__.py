"""Presentation: figures of simulation results (:mod:`sim.viz.figures`), PROXY header anatomy
plots (:mod:`sim.viz.plots`) and the notebooks' tables and interactive explorer
(:mod:`sim.viz.explore`). Nothing here changes a result."""
