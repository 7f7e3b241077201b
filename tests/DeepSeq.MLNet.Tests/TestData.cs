using System.Diagnostics;
using Microsoft.ML;

namespace DeepSeq.MLNet.Tests;

public sealed class Review
{
    public string Text = "";
    public bool Label;
}

public sealed class Topic
{
    public string Text = "";
    public string Category = "";
}

public sealed class Series
{
    [Microsoft.ML.Data.VectorType] public float[] Steps = [];
    public float Target;
}

/// <summary>Small synthetic data sets whose labels depend on word order or sequence content, so a model must read them.</summary>
internal static class TestData
{
    static readonly string[] Neutral = ["the", "movie", "was", "a", "film", "and", "it", "plot", "actors", "story", "this", "really"];

    /// <summary>Label: whether "good" appears more often than "bad" (with "not" flipping the next word).</summary>
    public static List<Review> Reviews(int count, int seed)
    {
        var rng = new Random(seed);
        var rows = new List<Review>();
        for (int i = 0; i < count; i++)
        {
            var words = new List<string>();
            int score = 0, length = rng.Next(4, 14);
            for (int k = 0; k < length; k++)
            {
                int r = rng.Next(10);
                if (r < 2) { words.Add("good"); score++; }
                else if (r < 4) { words.Add("bad"); score--; }
                else words.Add(Neutral[rng.Next(Neutral.Length)]);
            }
            if (score == 0) { words.Add(rng.Next(2) == 0 ? "good" : "bad"); score = words[^1] == "good" ? 1 : -1; }
            rows.Add(new Review { Text = string.Join(' ', words), Label = score > 0 });
        }
        return rows;
    }

    /// <summary>Category: the first topic word ("sport", "music", "food") that appears.</summary>
    public static List<Topic> Topics(int count, int seed)
    {
        string[] topics = ["sport", "music", "food"];
        var rng = new Random(seed);
        var rows = new List<Topic>();
        for (int i = 0; i < count; i++)
        {
            var words = Enumerable.Range(0, rng.Next(3, 9)).Select(_ => Neutral[rng.Next(Neutral.Length)]).ToList();
            var topic = topics[rng.Next(3)];
            words.Insert(rng.Next(words.Count), topic);
            rows.Add(new Topic { Text = string.Join(' ', words), Category = topic });
        }
        return rows;
    }

    /// <summary>Target: sum of the series' first feature; two features per step.</summary>
    public static List<Series> Sums(int count, int seed)
    {
        var rng = new Random(seed);
        var rows = new List<Series>();
        for (int i = 0; i < count; i++)
        {
            int steps = rng.Next(2, 9);
            var values = new float[steps * 2];
            float sum = 0;
            for (int t = 0; t < steps; t++) { values[2 * t] = rng.NextSingle() - 0.5f; values[2 * t + 1] = rng.NextSingle(); sum += values[2 * t]; }
            rows.Add(new Series { Steps = values, Target = sum });
        }
        return rows;
    }

    public static SequenceBinaryClassificationTrainer.Options SmallBinary(string features = "Tokens") => new()
    {
        FeatureColumnName = features, HiddenSize = 16, EmbeddingSize = 8, Epochs = 8, BatchSize = 16, Dropout = 0f, Seed = 1,
        LearningRate = 0.01f, EarlyStoppingPatience = 0,
    };

    public static IEstimator<ITransformer> Tokenizer(MLContext ml) => ml.DeepSeq().TokenizeText("Tokens", "Text", minimumCount: 1);

    /// <summary>Text → tokens → a small binary sequence classifier trained for <paramref name="epochs"/> epochs.</summary>
    public static IEstimator<ITransformer> SmallBinaryPipeline(MLContext ml, int epochs)
    {
        var options = SmallBinary();
        options.Epochs = epochs;
        return Tokenizer(ml).Append(ml.DeepSeq().BinaryClassification(options));
    }

    /// <summary>Text → tokens → a small multiclass classifier of <see cref="Topics"/> (label key from Category).</summary>
    public static IEstimator<ITransformer> SmallTopicPipeline(MLContext ml, int epochs, Action<SequenceMulticlassClassificationTrainer.Options>? configure = null)
    {
        var options = new SequenceMulticlassClassificationTrainer.Options
        {
            FeatureColumnName = "Tokens", HiddenSize = 16, EmbeddingSize = 8, Epochs = epochs, BatchSize = 16, Dropout = 0f, Seed = 1, LearningRate = 0.01f,
        };
        configure?.Invoke(options);
        return ml.Transforms.Conversion.MapValueToKey("Label", "Category").Append(Tokenizer(ml)).Append(ml.DeepSeq().MulticlassClassification(options));
    }

    /// <summary>Runs DeepSeq.MLNet.LoadCheck in a fresh process and returns its output lines.</summary>
    public static List<string> RunLoadCheck(params string[] args)
    {
        string dll = Path.Combine(AppContext.BaseDirectory, "DeepSeq.MLNet.LoadCheck.dll");
        if (!File.Exists(dll)) // built beside us by the project reference, in its own output folder
            dll = Directory.EnumerateFiles(Path.GetFullPath(Path.Combine(AppContext.BaseDirectory, "..", "..", "..", "..", "DeepSeq.MLNet.LoadCheck", "bin")), "DeepSeq.MLNet.LoadCheck.dll", SearchOption.AllDirectories).First();
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        psi.ArgumentList.Add(dll);
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        string output = p.StandardOutput.ReadToEnd(), error = p.StandardError.ReadToEnd();
        p.WaitForExit();
        Assert.AreEqual(0, p.ExitCode, error);
        return [.. output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.Trim())];
    }

    /// <summary>The repository's root (the folder with README.md), found from the test assembly's folder.</summary>
    public static string RepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "README.md")) && Directory.Exists(Path.Combine(dir.FullName, "src"))) return dir.FullName;
        throw new InvalidOperationException("Repository root not found above " + AppContext.BaseDirectory);
    }

    /// <summary>Collects MLContext.Log messages (thread-safe snapshot).</summary>
    public static Func<List<string>> CaptureLog(MLContext ml)
    {
        var messages = new List<string>();
        ml.Log += (_, e) => { lock (messages) messages.Add(e.Message); };
        return () => { lock (messages) return [.. messages]; };
    }
}
