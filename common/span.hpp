// span<T>: a non-owning view of a contiguous array with its size (C++17 has no std::span).
#pragma once

#include <cstddef>  // size_t
#include <vector>   // std::vector

namespace pinntk {

template <class T>
class span {
 public:
  span() = default;
  span(T* data, size_t size) : data_(data), size_(size) {}
  template <class U>
  span(std::vector<U>& v) : data_(v.data()), size_(v.size()) {}  // NOLINT: implicit like std::span
  template <class U>
  span(const std::vector<U>& v) : data_(v.data()), size_(v.size()) {}  // NOLINT
  T* data() const { return data_; }
  size_t size() const { return size_; }
  T& operator[](size_t i) const { return data_[i]; }
  T* begin() const { return data_; }
  T* end() const { return data_ + size_; }

 private:
  T* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace pinntk
