// Command argocd is a trimmed multi-call Argo CD binary for the local sandbox:
// only the application controller, the repo server, the ApplicationSet
// controller and the git ask-pass helper, built from the published
// github.com/argoproj/argo-cd/v3 module.
//
// The component is chosen like upstream's cmd/main.go does — by the
// ARGOCD_BINARY_NAME environment variable, else by the program name
// (argv[0], e.g. a symlink named argocd-repo-server) — and, in addition,
// by a first argument naming the component:
//
//	argocd application-controller [flags]
//	argocd repo-server [flags]
//	argocd applicationset-controller [flags]
//	argocd git-ask-pass
//	argocd version
//
// The repo server runs git with GIT_ASKPASS=argocd and
// ARGOCD_BINARY_NAME=argocd-git-ask-pass, so keep this binary on PATH
// under the name "argocd".
package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
	"k8s.io/klog/v2"

	appcontroller "github.com/argoproj/argo-cd/v3/cmd/argocd-application-controller/commands"
	appsetcontroller "github.com/argoproj/argo-cd/v3/cmd/argocd-applicationset-controller/commands"
	gitaskpass "github.com/argoproj/argo-cd/v3/cmd/argocd-git-ask-pass/commands"
	reposerver "github.com/argoproj/argo-cd/v3/cmd/argocd-repo-server/commands"
	"github.com/argoproj/argo-cd/v3/common"
	"github.com/argoproj/argo-cd/v3/util/log"
)

const binaryNameEnv = "ARGOCD_BINARY_NAME"

var components = map[string]func() *cobra.Command{
	"application-controller":    appcontroller.NewCommand,
	"applicationset-controller": appsetcontroller.NewCommand,
	"repo-server":               reposerver.NewCommand,
	"git-ask-pass":              gitaskpass.NewCommand,
}

func init() {
	// As upstream: make klog use Argo CD's configured log level and format.
	klog.SetLogger(log.NewLogrusLogger(log.NewWithCurrentConfig()))
}

func usage() {
	fmt.Fprintf(os.Stderr, "usage: %s {application-controller|applicationset-controller|repo-server|git-ask-pass|version} [flags]\n", filepath.Base(os.Args[0]))
}

func main() {
	name := filepath.Base(os.Args[0])
	if v := os.Getenv(binaryNameEnv); v != "" {
		name = v
	}
	args := os.Args[1:]
	newCmd, ok := components[strings.TrimPrefix(name, "argocd-")]
	if !ok {
		if len(args) == 0 {
			usage()
			os.Exit(2)
		}
		switch args[0] {
		case "version", "--version":
			v := common.GetVersion()
			fmt.Printf("argocd: %s\n  GoVersion: %s\n  Platform: %s\n", v, v.GoVersion, v.Platform)
			return
		case "help", "-h", "--help":
			usage()
			return
		}
		newCmd, ok = components[strings.TrimPrefix(args[0], "argocd-")]
		if !ok {
			fmt.Fprintf(os.Stderr, "unknown component %q\n", args[0])
			usage()
			os.Exit(2)
		}
		args = args[1:]
	}
	cmd := newCmd()
	cmd.SetArgs(args)
	if err := cmd.Execute(); err != nil {
		os.Exit(1)
	}
}
