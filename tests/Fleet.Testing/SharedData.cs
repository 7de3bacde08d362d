using Xunit;

namespace Fleet.Testing;

/// <summary>
/// Finds the real public feeds in <c>../shared/data</c> (conformance data nobody on the team wrote).
/// </summary>
/// <remarks>
/// Looks at <c>FLEET_SHARED_DATA</c> first, then for a <c>shared/data</c> folder beside the repository
/// or any of its ancestors. On a user's clone the folder is absent and tests call
/// <see cref="RequireDirectory"/>, which skips them with a message naming what is missing.
/// </remarks>
public static class SharedData
{
    private static readonly Lazy<string?> s_root = new(Locate);

    /// <summary>The <c>shared/data</c> folder, or null when it is absent.</summary>
    public static string? Root => s_root.Value;

    /// <summary>Returns the full path of a sub folder of shared/data, or skips the current test.</summary>
    public static string RequireDirectory(string relative)
    {
        var root = Root ?? throw SkipMissing(relative);

        var path = Path.Combine(root, relative);
        if (!Directory.Exists(path))
        {
            Assert.Skip($"real-data test: '{path}' not found");
        }

        return path;
    }

    /// <summary>Returns the full path of a file under shared/data, or skips the current test.</summary>
    public static string RequireFile(string relative)
    {
        var root = Root ?? throw SkipMissing(relative);

        var path = Path.Combine(root, relative);
        if (!File.Exists(path))
        {
            Assert.Skip($"real-data test: '{path}' not found");
        }

        return path;
    }

    private static InvalidOperationException SkipMissing(string relative)
    {
        Assert.Skip($"real-data test: ../shared/data not found (set FLEET_SHARED_DATA to run it); needs '{relative}'");
        return new InvalidOperationException("unreachable: Assert.Skip throws");
    }

    private static string? Locate()
    {
        var env = Environment.GetEnvironmentVariable("FLEET_SHARED_DATA");
        if (!string.IsNullOrEmpty(env) && Directory.Exists(env))
        {
            return Path.GetFullPath(env);
        }

        for (var dir = new DirectoryInfo(RepoPaths.Root); dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, "shared", "data");
            if (Directory.Exists(candidate))
            {
                return candidate;
            }
        }

        return null;
    }
}

/// <summary>Paths inside the repository, found from the test assembly's location.</summary>
public static class RepoPaths
{
    private static readonly Lazy<string> s_root = new(() =>
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Fleet.sln")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException($"Fleet.sln not found above {AppContext.BaseDirectory}");
    });

    /// <summary>The repository root (the folder holding Fleet.sln).</summary>
    public static string Root => s_root.Value;

    /// <summary>The committed sample city.</summary>
    public static string SampleData => Path.Combine(Root, "sample-data");
}
