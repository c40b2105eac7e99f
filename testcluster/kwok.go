package main

import (
	"os"

	"github.com/spf13/pflag"

	"sigs.k8s.io/kwok/pkg/config"
	kwok "sigs.k8s.io/kwok/pkg/kwok/cmd"
	"sigs.k8s.io/kwok/pkg/log"
	"sigs.k8s.io/kwok/pkg/utils/signals"
)

// runKwok is sigs.k8s.io/kwok/cmd/kwok's main, which cannot be imported:
// the global flags (--config with the Stage files, logging) are parsed
// before the command is built because the command reads them from ctx.
func runKwok() {
	flagset := pflag.NewFlagSet("global", pflag.ContinueOnError)
	flagset.ParseErrorsAllowlist.UnknownFlags = true
	flagset.Usage = func() {}

	ctx := signals.SetupSignalContext()
	ctx, logger := log.InitFlags(ctx, flagset)

	ctx, err := config.InitFlags(ctx, flagset)
	if err != nil {
		_, _ = os.Stderr.Write([]byte(flagset.FlagUsages()))
		logger.Error("Init config flags", "err", err)
		os.Exit(1)
	}

	command := kwok.NewCommand(ctx)
	command.PersistentFlags().AddFlagSet(flagset)
	// k8s.io/component-base registers a global (non-bool) --version flag,
	// which cobra merges in; with Version set, cobra would then refuse to run
	// ("version" flag declared as non-bool).
	command.Version = ""
	if err := command.ExecuteContext(ctx); err != nil {
		logger.Error("Execute exit", "err", err)
		os.Exit(1)
	}
}
