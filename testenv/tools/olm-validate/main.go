// olm-bundle-validate checks an OLM bundle directory with the operator
// framework's own validators: the default bundle checks (what `operator-sdk
// bundle validate` runs) plus the optional OperatorHub, capabilities,
// categories, object (PDB), removed-API and good-practice suites. Unlike
// `operator-verify manifests`, it exits non-zero when a check fails, so a
// test can rely on it.
//
// Usage: olm-bundle-validate [-k8s-version 1.33] [-strict] BUNDLE_DIR
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/operator-framework/api/pkg/manifests"
	"github.com/operator-framework/api/pkg/validation"
)

func main() {
	k8sVersion := flag.String("k8s-version", "", "Kubernetes version to check removed APIs against (default: the CSV's minKubeVersion)")
	strict := flag.Bool("strict", false, "treat warnings as failures")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: olm-bundle-validate [-k8s-version X.Y] [-strict] BUNDLE_DIR")
		os.Exit(2)
	}

	bundle, err := manifests.GetBundleFromDir(flag.Arg(0))
	if err != nil {
		fmt.Fprintf(os.Stderr, "ERROR cannot load the bundle in %s: %v\n", flag.Arg(0), err)
		os.Exit(1)
	}

	validators := validation.DefaultBundleValidators.WithValidators(
		validation.OperatorHubV2Validator,
		validation.StandardCapabilitiesValidator,
		validation.StandardCategoriesValidator,
		validation.ObjectValidator,
		validation.AlphaDeprecatedAPIsValidator,
		validation.GoodPracticesValidator,
	)
	objects := bundle.ObjectsToValidate()
	if *k8sVersion != "" {
		objects = append(objects, map[string]string{"k8s-version": *k8sVersion})
	}

	errorCount, warningCount := 0, 0
	for _, result := range validators.Validate(objects...) {
		for _, e := range result.Errors {
			errorCount++
			fmt.Printf("ERROR %s: %s\n", result.Name, e.Error())
		}
		for _, w := range result.Warnings {
			warningCount++
			fmt.Printf("WARN %s: %s\n", result.Name, w.Error())
		}
	}
	fmt.Printf("%s: %d errors, %d warnings\n", flag.Arg(0), errorCount, warningCount)
	if errorCount > 0 || (*strict && warningCount > 0) {
		os.Exit(1)
	}
}
