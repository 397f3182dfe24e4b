"""Report tables over run records: one table per axis (accuracy, training time and
cost, data efficiency, domain shift, forgetting), a summary per strategy, ranks
across tasks, and the cells that miss seeds; one module per table, listed in
`build` (docs/architecture.md).

A cell is (backbone, dataset, strategy, data); its seeds are replicates. A task is a
cell without its strategy: strategies are compared within a task on matched seeds.
Every table says how many seeds it averages, which interval it shows and which test
marked its values. `render.render` turns a Report into text, LaTeX, CSV or JSON,
`html.render_html` into a page, `plots` into figures. No torch.
"""

from ftbench.report.build import TEST_SET, build_report
from ftbench.report.core import (BEST, METRICS, TIED, UNTESTED, Cell, Est, Num, Ranking, Report, Study, Table,
                                 correct_bits, json_number, load_study, shifted_mean, source_metric, split_metric,
                                 time_to_target, timing)

__all__ = ["TEST_SET", "BEST", "correct_bits", "METRICS", "TIED", "UNTESTED", "Cell", "Est", "Num", "Ranking",
           "Report", "Study", "Table", "build_report", "json_number", "load_study", "shifted_mean", "source_metric",
           "split_metric", "time_to_target", "timing"]
