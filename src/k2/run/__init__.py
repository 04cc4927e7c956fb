"""``k2 run``: the supervisor that starts and watches every part of the pipeline on one machine,
its console, and the run record that ``k2 status`` and ``make stop`` read."""
