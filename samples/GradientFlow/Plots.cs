using DeepSeq.Core.Diagnostics;
using ScottPlot;

namespace GradientFlow;

/// <summary>PNG plots with a log-scale y axis (values plotted as log₁₀, labelled as powers of ten).</summary>
static class Plots
{
    /// <summary>‖dL/dh_k‖ / ‖dL/dh_T‖ against the distance back in time, one line per model.</summary>
    public static void Flow(string path, string title, IReadOnlyList<(string Name, LayerGradientFlow Flow)> flows)
    {
        var plot = new Plot();
        foreach (var (name, flow) in flows)
        {
            double reference = flow.GradientNorm[0];
            Line(plot, name, [.. Enumerable.Range(0, flow.Length).Select(d => (double)d)], [.. flow.GradientNorm.Select(g => g / reference)]);
        }
        Finish(plot, path, title, "steps back from the last step (distance k)", "‖dL/dh_k‖ / ‖dL/dh_T‖");
    }

    /// <summary>Validation loss after every epoch, through the whole curriculum of lengths.</summary>
    public static void Curves(string path, string title, IReadOnlyList<(string Name, List<double> Loss)> curves)
    {
        var plot = new Plot();
        foreach (var (name, loss) in curves)
            Line(plot, name, [.. Enumerable.Range(1, loss.Count).Select(e => (double)e)], [.. loss]);
        Finish(plot, path, title, "epoch (lengths in increasing order, a fresh model for each)", "validation loss");
    }

    static void Line(Plot plot, string name, double[] x, double[] y)
    {
        var keep = Enumerable.Range(0, x.Length).Where(i => y[i] > 0 && double.IsFinite(y[i])).ToArray();
        if (keep.Length == 0) return;
        var line = plot.Add.ScatterLine(keep.Select(i => x[i]).ToArray(), keep.Select(i => Math.Log10(y[i])).ToArray());
        line.LegendText = name;
        line.LineWidth = 2;
    }

    static void Finish(Plot plot, string path, string title, string xLabel, string yLabel)
    {
        plot.Axes.Left.TickGenerator = new ScottPlot.TickGenerators.NumericAutomatic
        {
            IntegerTicksOnly = true,
            LabelFormatter = y => $"1e{y:0}",
            MinorTickGenerator = new ScottPlot.TickGenerators.LogMinorTickGenerator(),
        };
        plot.Title(title);
        plot.XLabel(xLabel);
        plot.YLabel(yLabel);
        plot.ShowLegend(Alignment.LowerLeft);
        plot.SavePng(path, 1000, 650);
    }
}
