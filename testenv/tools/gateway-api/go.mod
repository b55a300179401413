// The Gateway API CRDs the test environment installs: testenv/provision.sh
// copies them from this module's config/crd into the cache.
module apisix-operator.invalid/testenv/gateway-api

go 1.26

require sigs.k8s.io/gateway-api v1.5.1
