using System.Globalization;
using Microsoft.ML;
using Microsoft.ML.Data;

namespace DeepSeq.MLNet;

/// <summary>
/// NB-LR: Wang and Manning's NB-SVM (2012) with a logistic loss, from stock ML.NET transforms and trainers, so the
/// model saves and loads like any other. Word n-gram counts, each feature scaled by the size of its log-count ratio
/// r = log((p / ‖p‖₁) / (q / ‖q‖₁)) — p and q the numbers of positive and negative training rows holding it, plus
/// one — L2-normalised per row, then an L-BFGS logistic regression. The ratio comes from the training rows only.
/// </summary>
internal static class NbLogisticRegression
{
    const string Words = "__DeepSeq_NbWords", Keys = "__DeepSeq_NbKeys", Features = "__DeepSeq_NbFeatures";

    /// <summary>The L2 penalties tried when none are given; on IMDB (word 1–2-grams) they gave 0.9190, 0.9182 and 0.9182 validation accuracy.</summary>
    internal static readonly float[] DefaultPenalties = [0.01f, 0.03f, 0.1f];

    public static ITransformer Fit(ModelCandidateContext c, string text, string label, int ngramLength, float[] penalties)
    {
        var ml = c.Context;
        var counts = ml.Transforms.Text.NormalizeText(Words, text, keepPunctuations: false)
            .Append(ml.Transforms.Text.TokenizeIntoWords(Words))
            .Append(ml.Transforms.Conversion.MapValueToKey(Keys, Words))
            .Append(ml.Transforms.Text.ProduceNgrams(Features, Keys, ngramLength: ngramLength, useAllLengths: true))
            .Fit(c.TrainData);
        var countRows = ml.Data.Cache(counts.Transform(c.TrainData), Features, label);
        var scale = RatioScaler(ml, countRows, label);
        var scaled = scale.Transform(countRows);
        var norm = ml.Transforms.NormalizeLpNorm(Features).Fit(scaled);
        var prepare = counts.Append(scale).Append(norm);
        var rows = ml.Data.Cache(norm.Transform(scaled), Features, label);
        var validation = c.ValidationData is null ? null : ml.Data.Cache(prepare.Transform(c.ValidationData), Features, label);

        // Without validation rows (cross-validation) there is nothing to choose on: the middle penalty.
        var tried = validation is null ? [penalties[penalties.Length / 2]] : penalties;
        ITransformer? best = null;
        double bestAccuracy = double.NegativeInfinity;
        float bestPenalty = tried[0];
        foreach (float l2 in tried)
        {
            c.CancellationToken.ThrowIfCancellationRequested();
            var model = ml.BinaryClassification.Trainers.LbfgsLogisticRegression(label, Features, l1Regularization: 0, l2Regularization: l2).Fit(rows);
            double accuracy = validation is null ? 0 : ml.BinaryClassification.Evaluate(model.Transform(validation), label).Accuracy;
            if (accuracy > bestAccuracy) (best, bestAccuracy, bestPenalty) = (model, accuracy, l2);
        }
        if (tried.Length > 1) c.AddNote($"L2 {bestPenalty.ToString(CultureInfo.InvariantCulture)} (best of {string.Join(", ", tried.Select(p => p.ToString(CultureInfo.InvariantCulture)))} on validation)");
        return prepare.Append(best!);
    }

    /// <summary>
    /// Multiplies each feature by |r|. ML.NET has no transform that scales by given weights, but a min-max normaliser
    /// with fixZero scales each slot by 1 / max |x| over the rows it is fitted on: fitted on the two rows 1 / |r| and
    /// 0, it scales by |r|. The sign of r does not matter: under an L2 penalty the weight takes it.
    /// </summary>
    static ITransformer RatioScaler(MLContext ml, IDataView countRows, string label)
    {
        int size = ((VectorDataViewType)countRows.Schema[Features].Type).Size;
        double[] positive = new double[size], negative = new double[size];
        using (var cursor = countRows.GetRowCursor([countRows.Schema[Features], countRows.Schema[label]]))
        {
            var features = cursor.GetGetter<VBuffer<float>>(countRows.Schema[Features]);
            var labels = cursor.GetGetter<bool>(countRows.Schema[label]);
            VBuffer<float> x = default;
            bool y = false;
            while (cursor.MoveNext())
            {
                features(ref x);
                labels(ref y);
                var counts = y ? positive : negative;
                foreach (var slot in x.Items()) if (slot.Value > 0) counts[slot.Key]++; // present or not: NB-SVM's binarised counts
            }
        }
        double positiveTotal = positive.Sum() + size, negativeTotal = negative.Sum() + size;
        var inverse = new float[size];
        for (int i = 0; i < size; i++)
        {
            double r = Math.Log((positive[i] + 1) / positiveTotal / ((negative[i] + 1) / negativeTotal));
            inverse[i] = (float)(1 / Math.Max(Math.Abs(r), 1e-3)); // r = 0 would need an infinite row: scale by 0.001 instead
        }
        var definition = SchemaDefinition.Create(typeof(ScaleRow));
        definition[Features].ColumnType = new VectorDataViewType(NumberDataViewType.Single, size);
        var scaleRows = ml.Data.LoadFromEnumerable([new ScaleRow { Values = inverse }, new ScaleRow { Values = new float[size] }], definition);
        return ml.Transforms.NormalizeMinMax(Features, fixZero: true).Fit(scaleRows);
    }

    sealed class ScaleRow
    {
        [ColumnName(Features)] public float[] Values = [];
    }
}
