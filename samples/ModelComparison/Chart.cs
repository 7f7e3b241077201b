using DeepSeq.MLNet;
using ScottPlot;

/// <summary>The leaderboard as a PNG: validation accuracy (± its standard deviation across folds) against training time.</summary>
static class Chart
{
    public static void Write(string path, ModelComparisonResult final, params ModelComparisonResult[] phases)
    {
        var plot = new Plot();
        var done = final.Leaderboard.Where(e => e.Status == CandidateStatus.Completed).ToList();
        // Trials the search stopped early, in grey: what the finalists were chosen from.
        var eliminated = phases.SelectMany(p => p.Leaderboard).Where(e => e.Status == CandidateStatus.Eliminated).ToList();
        if (eliminated.Count > 0)
        {
            var grey = plot.Add.ScatterPoints(eliminated.Select(e => e.TrainingTime.TotalMinutes).ToArray(), eliminated.Select(e => e.Metric).ToArray(), Colors.Gray);
            grey.LegendText = "search trials stopped early";
        }
        foreach (var (kind, color) in new[] { (CandidateKind.Single, Colors.C0), (CandidateKind.Averaged, Colors.C1), (CandidateKind.Stacked, Colors.C2) })
        {
            var rows = done.Where(e => e.Kind == kind).ToList();
            if (rows.Count == 0) continue;
            double[] x = [.. rows.Select(e => e.TrainingTime.TotalMinutes)], y = [.. rows.Select(e => e.Metric)];
            var points = plot.Add.ScatterPoints(x, y, color);
            points.MarkerSize = 8;
            points.LegendText = kind == CandidateKind.Single ? "single models" : kind == CandidateKind.Averaged ? "averaged ensemble" : "stacked ensemble";
            var bars = plot.Add.ErrorBar(x, y, [.. rows.Select(e => e.MetricStandardDeviation)]);
            bars.Color = color;
            foreach (var e in rows)
            {
                var label = plot.Add.Text(e.Name, e.TrainingTime.TotalMinutes, e.Metric);
                label.LabelFontSize = 10;
                label.LabelOffsetX = 6;
            }
        }
        plot.Axes.Margins(left: 0.05, right: 0.25, bottom: 0.1, top: 0.1); // room on the right for the last point's name
        plot.Title($"Validation {final.Metric} against training time");
        plot.XLabel("training time (minutes)");
        plot.YLabel($"validation {final.Metric}");
        plot.ShowLegend(Alignment.LowerRight);
        plot.SavePng(path, 1100, 700);
    }
}
