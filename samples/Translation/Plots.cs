using DeepSeq.Core.Models;
using DeepSeq.Core.Training;
using Spectre.Console;

namespace Translation;

/// <summary>Attention heatmaps (PNG and terminal) and training curves.</summary>
public static class Plots
{
    /// <summary>
    /// The attention matrix as a PNG heatmap: source tokens (as the encoder read them) along the bottom, predicted
    /// tokens (and EOS) down the side, the first at the top.
    /// </summary>
    public static void Heatmap(Seq2SeqTranslation t, string path, string title)
    {
        int rows = t.Attention.Length, cols = t.SourceTokens.Count;
        var plot = new ScottPlot.Plot();
        var colors = new ScottPlot.Colormaps.Viridis();
        // One rectangle per cell, centred on x = c, y = rows − 1 − r (the first output token on top); colours on a
        // fixed 0 … 1 scale, so that maps compare.
        for (int r = 0; r < rows; r++)
            for (int c = 0; c < cols; c++)
            {
                double y = rows - 1 - r;
                var cell = plot.Add.Rectangle(c - 0.5, c + 0.5, y - 0.5, y + 0.5);
                cell.FillStyle.Color = colors.GetColor(Math.Clamp(t.Attention[r][c], 0, 1));
                cell.LineStyle.Width = 0;
            }
        plot.Axes.SetLimits(-0.5, cols - 0.5, -0.5, rows - 0.5);
        plot.Grid.IsVisible = false;
        plot.Axes.Bottom.SetTicks([.. Enumerable.Range(0, cols).Select(c => (double)c)], [.. t.SourceTokens]);
        string[] outputs = [.. t.Tokens, "</s>"];
        plot.Axes.Left.SetTicks([.. Enumerable.Range(0, rows).Select(r => (double)(rows - 1 - r))], [.. outputs.Take(rows)]);
        plot.Axes.Bottom.TickLabelStyle.Rotation = cols > 8 ? 45 : 0;
        plot.Axes.Bottom.Label.Text = "source   (weight: dark 0 … yellow 1)";
        plot.Axes.Left.Label.Text = "output";
        plot.Title(title);
        plot.SavePng(path, Math.Max(420, 120 + 45 * cols), 160 + 40 * rows);
    }

    /// <summary>The attention matrix in the terminal: one row per output token; blank below 0.05, ░ below 0.25, ▒ below 0.5, ▓ below 0.75, █ above.</summary>
    public static void Terminal(Seq2SeqTranslation t)
    {
        string[] shades = [" ", "░", "▒", "▓", "█"];
        string[] outputs = [.. t.Tokens, "</s>"];
        int width = Math.Max(3, t.SourceTokens.Max(s => s.Length) + 1);
        int label = outputs.Max(s => s.Length) + 1;
        var header = new string(' ', label) + string.Concat(t.SourceTokens.Select(s => s.PadRight(width)));
        AnsiConsole.WriteLine(header);
        for (int r = 0; r < t.Attention.Length; r++)
        {
            var line = outputs[r].PadRight(label);
            foreach (float w in t.Attention[r])
            {
                string cell = shades[w < 0.05f ? 0 : w < 0.25f ? 1 : w < 0.5f ? 2 : w < 0.75f ? 3 : 4];
                line += string.Concat(Enumerable.Repeat(cell, width - 1)) + " ";
            }
            AnsiConsole.WriteLine(line);
        }
    }

    /// <summary>Training loss and validation figure per epoch.</summary>
    public static void TrainingCurves(TrainingReport report, string path, string metricName, bool asErrorRate)
    {
        if (report.Epochs.Count == 0) return;
        var plot = new ScottPlot.Plot();
        double[] epochs = [.. report.Epochs.Select(e => (double)e.Epoch)];
        var train = plot.Add.Scatter(epochs, [.. report.Epochs.Select(e => e.TrainLoss)]);
        train.LegendText = "train loss";
        var valid = plot.Add.Scatter(epochs, [.. report.Epochs.Select(e => e.ValidationLoss ?? double.NaN)]);
        valid.LegendText = "validation loss";
        var right = plot.Axes.Right;
        var metric = plot.Add.Scatter(epochs, [.. report.Epochs.Select(e => e.ValidationMetric is double m ? (asErrorRate ? 1 - m : m) : double.NaN)]);
        metric.Axes.YAxis = right;
        metric.LegendText = metricName;
        right.Label.Text = metricName;
        plot.Axes.Left.Label.Text = "loss (token cross-entropy)";
        plot.Axes.Bottom.Label.Text = "epoch";
        plot.ShowLegend(ScottPlot.Alignment.UpperCenter); // the curves fall to the lower right, where the default corner would cover their ends
        plot.SavePng(path, 800, 500);
    }
}
