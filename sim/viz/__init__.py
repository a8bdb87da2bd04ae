"""Presentation: everything the notebooks and the docs draw; nothing here changes a result.

* :mod:`sim.viz.paths` (data in :mod:`sim.viz.path_view`): the path of one connection with
  the addresses on every leg, from :func:`sim.trace_hops`;
* :mod:`sim.viz.timeline`: success per second over a failover, one panel per run;
* :mod:`sim.viz.figures`: reachability, load spread, sweeps, rate limits;
* :mod:`sim.viz.plots`: a PROXY protocol header byte by byte;
* :mod:`sim.viz.explore`, :mod:`sim.viz.controls`, :mod:`sim.viz.explorer`: the notebooks'
  tables and the interactive explorer of tutorial 07;
* :mod:`sim.viz.decision`: the decision table that ends the tutorials;
* :mod:`sim.viz.architecture`: the simulator's architecture picture;
* :mod:`sim.viz.renotebook`: re-execute a notebook and stamp the hash of its figure code.
"""
