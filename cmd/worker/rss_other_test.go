//go:build !linux

package main

func peakRSS() int64 { return 0 }

func peakRSSSupported() bool { return false }
