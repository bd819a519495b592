// Package mototest starts moto's server, a real AWS API emulator, for tests
// of code that talks to AWS (Secrets Manager, EC2, S3, and the Terraform AWS
// provider). Tests skip with a clear message where moto_server is absent.
package mototest

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
)

// Start starts moto_server on a free loopback port for the test, points the
// AWS SDK's environment at dummy credentials and us-east-1, and returns the
// endpoint URL. The server is killed when the test ends.
func Start(tb testing.TB) string {
	tb.Helper()
	bin, err := exec.LookPath("moto_server")
	if err != nil {
		tb.Skip("moto_server not on PATH (pip install 'moto[server]'): skipping a test that needs an AWS emulator")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	cmd := exec.Command(bin, "-H", "127.0.0.1", "-p", fmt.Sprint(port))
	// AWS-managed IAM policies (AmazonSSMManagedInstanceCore, which the
	// module attaches) exist in every real account; moto loads them only
	// when asked.
	cmd.Env = append(os.Environ(), "MOTO_IAM_LOAD_MANAGED_POLICIES=true")
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	url := fmt.Sprintf("http://127.0.0.1:%d", port)
	deadline := time.Now().Add(30 * time.Second)
	for { // polls: moto starts in another process
		resp, err := http.Get(url + "/moto-api/")
		if err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			tb.Fatalf("moto_server did not start: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	for k, v := range map[string]string{"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_REGION": "us-east-1",
		"AWS_CONFIG_FILE": os.DevNull, "AWS_SHARED_CREDENTIALS_FILE": os.DevNull} {
		if t, ok := tb.(interface{ Setenv(k, v string) }); ok {
			t.Setenv(k, v)
		}
	}
	return url
}

// AWSConfig starts moto (Start) and returns the AWS configuration the
// standard chain loads for it, with the endpoint to override.
func AWSConfig(tb testing.TB) (aws.Config, string) {
	tb.Helper()
	url := Start(tb)
	cfg, err := config.LoadDefaultConfig(context.Background())
	if err != nil {
		tb.Fatal(err)
	}
	return cfg, url
}
