namespace DeepSeq.MLNet.Tests;

/// <summary>
/// The README's pipeline snippet is tests/PackageConsumer/Program.cs, which CI builds and runs against the packed
/// package: the snippet shown is the code that compiles.
/// </summary>
[TestClass]
public sealed class ReadmeTests
{
    [TestMethod]
    public void TheReadmeSnippetIsThePackageConsumersProgram()
    {
        string root = TestData.RepositoryRoot();
        string program = File.ReadAllText(Path.Combine(root, "tests", "PackageConsumer", "Program.cs")).ReplaceLineEndings("\n").TrimEnd();
        foreach (var readme in new[] { "README.md", Path.Combine("src", "PACKAGE.md") })
        {
            string text = File.ReadAllText(Path.Combine(root, readme)).ReplaceLineEndings("\n");
            StringAssert.Contains(text, "```csharp\n" + program + "\n```", $"{readme} shows tests/PackageConsumer/Program.cs verbatim");
        }
        Assert.DoesNotContain("../shared", File.ReadAllText(Path.Combine(root, "src", "PACKAGE.md")), "the package README stands alone");
    }
}
