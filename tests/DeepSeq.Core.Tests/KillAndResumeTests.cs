using System.Diagnostics;
using DeepSeq.Core.Training;

namespace DeepSeq.Core.Tests;

/// <summary>
/// A training process killed with SIGKILL in the middle of an epoch resumes from its last checkpoint and ends
/// with exactly the weights of an uninterrupted run. Both run DeepSeq.TrainingCheck (a bidirectional LSTM with
/// dropout, weight averaging, a cosine schedule with warm-up and validation; one thread; checkpoints every 3
/// steps) as child processes.
/// </summary>
[TestClass]
public sealed class KillAndResumeTests
{
    [TestMethod]
    public void KilledRunResumesToTheWeightsOfAnUninterruptedRun()
    {
        string dir = Path.Combine(Path.GetTempPath(), "deepseq-kill-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        string path = Path.Combine(dir, "run.ckpt");
        try
        {
            using var reference = Start(null); // uninterrupted, alongside (each child uses one thread)
            var referenceOutput = reference.StandardOutput.ReadToEndAsync();

            TrainingCheckpoint seen;
            using (var victim = Start(path))
            {
                var victimOutput = victim.StandardOutput.ReadToEndAsync();
                var clock = Stopwatch.StartNew();
                while (true)
                {
                    if (victim.HasExited) Assert.Fail($"The run ended before it could be killed:\n{victimOutput.Result}{victim.StandardError.ReadToEnd()}");
                    if (clock.Elapsed > TimeSpan.FromSeconds(90)) Assert.Fail("No checkpoint in the second epoch after 90 s.");
                    // Every read while the child writes must see a whole checkpoint (they are renamed into place).
                    if (File.Exists(path) && TrainingCheckpoint.Read(path) is { Epoch: >= 2, Step: > 0 } c) { seen = c; break; }
                    Thread.Sleep(10);
                }
                victim.Kill(); // SIGKILL on Linux and macOS
                victim.WaitForExit();
                if (OperatingSystem.IsLinux()) Assert.AreEqual(137, victim.ExitCode, "killed by signal 9");
            }
            var killedAt = TrainingCheckpoint.Read(path);
            Assert.IsFalse(killedAt.Finished, "killed before the end");
            Assert.IsGreaterThanOrEqualTo(seen.GlobalStep, killedAt.GlobalStep);

            using var resumed = Start(path);
            string resumedOutput = Finish(resumed, resumed.StandardOutput.ReadToEndAsync());
            string referenceText = Finish(reference, referenceOutput);

            var expected = Lines(referenceText);
            var actual = Lines(resumedOutput);
            StringAssert.Contains(actual.Single(l => l.StartsWith("best", StringComparison.Ordinal)), $"resumed {killedAt.GlobalStep}",
                $"resumed from the checkpoint of epoch {killedAt.Epoch}, step {killedAt.Step}");
            CollectionAssert.AreEqual(expected.Where(l => l.StartsWith("epoch", StringComparison.Ordinal)).ToList(), actual.Where(l => l.StartsWith("epoch", StringComparison.Ordinal)).ToList(),
                "every epoch's loss and metric, bit for bit");
            Assert.AreEqual(expected.Single(l => l.StartsWith("weights", StringComparison.Ordinal)), actual.Single(l => l.StartsWith("weights", StringComparison.Ordinal)),
                $"final weights bit for bit (killed at epoch {killedAt.Epoch}, step {killedAt.Step})");
            Assert.IsTrue(TrainingCheckpoint.Read(path).Finished);
        }
        finally { Directory.Delete(dir, recursive: true); }
    }

    static string Finish(Process p, Task<string> output)
    {
        if (!p.WaitForExit(120_000)) { p.Kill(); Assert.Fail("A training child ran for over 2 minutes."); }
        Assert.AreEqual(0, p.ExitCode, p.StandardError.ReadToEnd());
        return output.Result;
    }

    static List<string> Lines(string output) => [.. output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.Trim())];

    static Process Start(string? checkpoint)
    {
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        psi.ArgumentList.Add(CheckDll());
        if (checkpoint is not null) psi.ArgumentList.Add(checkpoint);
        return Process.Start(psi)!;
    }

    // Built by the project reference into its own output folder, of the same configuration as the tests.
    static string CheckDll()
    {
        const string name = "DeepSeq.TrainingCheck.dll";
        var here = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar));
        string beside = Path.Combine(here.FullName, name);
        if (File.Exists(beside)) return beside;
        string tests = Path.GetFullPath(Path.Combine(here.FullName, "..", "..", "..", ".."));
        string same = Path.Combine(tests, "DeepSeq.TrainingCheck", "bin", here.Parent!.Name, here.Name, name);
        return File.Exists(same) ? same
            : Directory.EnumerateFiles(Path.Combine(tests, "DeepSeq.TrainingCheck", "bin"), name, SearchOption.AllDirectories).First();
    }
}
