//go:build ignore

// Prints reference values computed by Kubernetes' own code, for kiln's unit tests:
// kubeadm's CA pin (cmd/kubeadm/app/util/pubkeypin) and the bootstrap-token JWS that
// kube-controller-manager's bootstrapsigner puts into cluster-info (k8s.io/cluster-bootstrap).
// Regenerate tests/data/upstream/vectors.tsv from a module that requires k8s.io/kubernetes
// (with its staging modules replaced, as kiln's source builds do) with:
//
//	go run upstream_vectors.go ../data/upstream > ../data/upstream/vectors.tsv
package main

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"

	"k8s.io/cluster-bootstrap/token/jws"
	"k8s.io/kubernetes/cmd/kubeadm/app/util/pubkeypin"
)

func main() {
	dir := os.Args[1]
	for _, name := range []string{"rsa-ca.crt", "ecdsa-ca.crt"} {
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			panic(err)
		}
		block, _ := pem.Decode(data)
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			panic(err)
		}
		fmt.Printf("pin\t%s\t%s\n", name, pubkeypin.Hash(cert))
	}
	kubeconfig, err := os.ReadFile(filepath.Join(dir, "cluster-info.kubeconfig"))
	if err != nil {
		panic(err)
	}
	for _, token := range [][2]string{{"abcdef", "0123456789abcdef"}, {"07401b", "f395accd246ae52d"}} {
		sig, err := jws.ComputeDetachedSignature(string(kubeconfig), token[0], token[1])
		if err != nil {
			panic(err)
		}
		fmt.Printf("jws\t%s\t%s\t%s\n", token[0], token[1], sig)
	}
}
