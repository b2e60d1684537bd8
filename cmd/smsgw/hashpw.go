package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"

	"golang.org/x/crypto/bcrypt"
)

// hashPassword prints the configuration form of a password, "bcrypt:<hash>",
// for smpp.password and emailIngress.password. With "-" it reads the
// password from the first line of stdin, so it stays out of shell history.
func hashPassword(args []string, stdin io.Reader, stdout io.Writer) error {
	if len(args) != 1 {
		return errors.New("usage: smsgw hash-password <password>   (or - to read it from stdin)")
	}
	pw := args[0]
	if pw == "-" {
		line, err := bufio.NewReader(stdin).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("read the password: %w", err)
		}
		pw = strings.TrimRight(line, "\r\n")
	}
	if pw == "" {
		return errors.New("the password is empty")
	}
	h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.DefaultCost)
	if err != nil {
		return fmt.Errorf("hash the password: %w", err)
	}
	fmt.Fprintf(stdout, "bcrypt:%s\n", h)
	return nil
}
