using BenchmarkDotNet.Running;

// BenchmarkDotNet micro benchmarks; run with:
//   dotnet run -c Release --project bench/Fleet.Bench -- --filter '*'
BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
