namespace Fleet.Bench;

/// <summary>Finds the real public data in <c>../shared/data</c> (or <c>FLEET_SHARED_DATA</c>) for benchmarks.</summary>
public static class BenchData
{
    /// <summary>Returns the full path of <paramref name="relative"/> under shared/data, or throws explaining what is missing.</summary>
    /// <exception cref="FileNotFoundException">The data folder or the file is absent.</exception>
    public static string RequireFile(string relative)
    {
        var root = Locate() ?? throw new FileNotFoundException(
            $"Benchmark data not found: this benchmark reads '{relative}' from ../shared/data (the real HSL feeds beside the repository). " +
            "Set FLEET_SHARED_DATA to that folder.");
        var path = Path.Combine(root, relative);
        return File.Exists(path) ? path : throw new FileNotFoundException($"Benchmark data not found: '{path}' does not exist.", path);
    }

    private static string? Locate()
    {
        var env = Environment.GetEnvironmentVariable("FLEET_SHARED_DATA");
        if (!string.IsNullOrEmpty(env) && Directory.Exists(env))
        {
            return Path.GetFullPath(env);
        }

        // BenchmarkDotNet runs each benchmark in a child process built under the artifacts folder, so look upwards
        // from both the working directory and the executable for a shared/data folder.
        foreach (var start in new[] { Environment.CurrentDirectory, AppContext.BaseDirectory })
        {
            for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
            {
                var candidate = Path.Combine(dir.FullName, "shared", "data");
                if (Directory.Exists(candidate))
                {
                    return candidate;
                }
            }
        }

        return null;
    }
}
